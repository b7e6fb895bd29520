//! Which RabbitMQ version each node runs or will run, read before any host is changed, and
//! the rules that version sets for the inventory. The version is the installed Debian
//! package's, else the inventory's pin (`rabbitmq.version`), else apt's candidate.

use super::{check_policies, major_minor};
use crate::inventory::{Inventory, NodeType};

/// Where a node's version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Installed,
    Pinned,
    Candidate,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Installed => "installed",
            Source::Pinned => "rabbitmq.version",
            Source::Candidate => "apt candidate",
        }
    }
}

/// The `rabbitmq-server` Debian version a node runs or will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub debian: String,
    pub source: Source,
}

impl Detected {
    pub fn upstream(&self) -> &str {
        upstream(&self.debian)
    }
}

/// One RabbitMQ node and its version (None: nothing installed, no pin, no candidate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVersion {
    pub node: String,
    pub detected: Option<Detected>,
}

impl NodeVersion {
    /// `node1 4.0.5 (installed 4.0.5-6+deb13u2)`.
    pub fn describe(&self) -> String {
        match &self.detected {
            Some(d) => format!(
                "{} {} ({} {})",
                self.node,
                d.upstream(),
                d.source.as_str(),
                d.debian
            ),
            None => format!("{} unknown", self.node),
        }
    }
}

/// The upstream version of a Debian version: no epoch, no Debian revision
/// (`1:4.0.5-6+deb13u2` → `4.0.5`).
pub fn upstream(debian: &str) -> &str {
    let no_epoch = match debian.split_once(':') {
        Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => debian,
    };
    no_epoch.rsplit_once('-').map_or(no_epoch, |(up, _)| up)
}

/// The installed version from `dpkg-query -W -f '${db:Status-Status} ${Version}'`: only a
/// package in state `installed` counts (not `config-files`, `half-installed`, ...).
pub fn parse_installed(dpkg: &str) -> Option<String> {
    let mut it = dpkg.split_whitespace();
    (it.next()? == "installed").then_some(())?;
    it.next().map(str::to_string)
}

/// The candidate from `apt-cache policy rabbitmq-server` (run with `LC_ALL=C`); `(none)` and
/// a package apt does not know give None.
pub fn parse_candidate(policy: &str) -> Option<String> {
    policy.lines().find_map(|l| {
        let v = l.trim().strip_prefix("Candidate:")?.trim();
        (!v.is_empty() && v != "(none)").then(|| v.to_string())
    })
}

/// Installed, else pinned, else the candidate.
pub fn detect(
    installed: Option<String>,
    pinned: Option<&str>,
    candidate: Option<String>,
) -> Option<Detected> {
    let (debian, source) = match (installed, pinned, candidate) {
        (Some(v), _, _) => (v, Source::Installed),
        (None, Some(p), _) => (p.to_string(), Source::Pinned),
        (None, None, Some(c)) => (c, Source::Candidate),
        (None, None, None) => return None,
    };
    Some(Detected { debian, source })
}

/// Everything the inventory asks that these versions cannot do, one message per rule (empty:
/// all fine). `nodes` are the inventory's RabbitMQ nodes.
pub fn check(inv: &Inventory, nodes: &[NodeVersion]) -> Vec<String> {
    let mut out = Vec::new();
    let unknown: Vec<&str> = nodes
        .iter()
        .filter(|n| n.detected.is_none())
        .map(|n| n.node.as_str())
        .collect();
    if !unknown.is_empty() {
        out.push(format!(
            "cannot tell which RabbitMQ version {} will run: rabbitmq-server is not installed, \
             rabbitmq.version is not set and apt has no candidate for it there. Run `apt-get \
             update` there (or add the apt source that has it), or set rabbitmq.version",
            unknown.join(", ")
        ));
    }
    let known: Vec<(&str, &str, (u32, u32))> = nodes
        .iter()
        .filter_map(|n| {
            let v = n.detected.as_ref()?.upstream();
            Some((n.node.as_str(), v, major_minor(v)?))
        })
        .collect();
    let unreadable: Vec<String> = nodes
        .iter()
        .filter_map(|n| {
            let d = n.detected.as_ref()?;
            major_minor(d.upstream()).is_none().then(|| n.describe())
        })
        .collect();
    if !unreadable.is_empty() {
        out.push(format!(
            "cannot read a RabbitMQ version from {}",
            unreadable.join(", ")
        ));
    }
    if let Some(pin) = &inv.rabbitmq.version {
        let other: Vec<String> = nodes
            .iter()
            .filter(|n| {
                n.detected
                    .as_ref()
                    .is_some_and(|d| d.source == Source::Installed && d.debian != *pin)
            })
            .map(NodeVersion::describe)
            .collect();
        if !other.is_empty() {
            out.push(format!(
                "rabbitmq.version pins {pin}, but {} has another version installed. hactl does \
                 not upgrade or downgrade RabbitMQ: upgrade the nodes yourself (one node at a \
                 time), or set rabbitmq.version to the installed version",
                other.join(", ")
            ));
        }
    }
    let majors: std::collections::BTreeSet<u32> = known.iter().map(|k| k.2.0).collect();
    let minors: std::collections::BTreeSet<(u32, u32)> = known.iter().map(|k| k.2).collect();
    if majors.len() > 1 {
        out.push(
            "the nodes would run different major versions of RabbitMQ, which do not form one \
             cluster (an upgrade from 3.x goes one minor version at a time up to 3.13, with every \
             feature flag enabled, then to 4.x; hactl does not upgrade). Install one version on \
             every node: set rabbitmq.version"
                .to_string(),
        );
    } else if minors.len() > 1 {
        out.push(
            "the nodes would run different minor versions of RabbitMQ. RabbitMQ tolerates that \
             only for the time of a rolling upgrade to the next minor version, which hactl does \
             not do; a node of another minor version joining may be refused or leave the \
             cluster without the newer features. Install one version on every node: set \
             rabbitmq.version"
                .to_string(),
        );
    }
    let mut versions: Vec<&str> = known.iter().map(|k| k.1).collect();
    versions.sort_unstable();
    versions.dedup();
    for v in &versions {
        if let Err(e) = check_policies(v, &inv.rabbitmq.policies) {
            out.push(format!("{e}"));
        }
    }
    let ram: Vec<String> = known
        .iter()
        .filter(|(node, _, (major, _))| {
            *major >= 4 && inv.node(node).is_some_and(|n| n.node_type == NodeType::Ram)
        })
        .map(|(node, v, _)| format!("{node} ({v})"))
        .collect();
    if !ram.is_empty() {
        out.push(format!(
            "RAM nodes are deprecated since RabbitMQ 3.9 and not supported on 4.x with its \
             Khepri metadata store: {} would be one. Use disc nodes (drop node_type: ram)",
            ram.join(", ")
        ));
    }
    let old: Vec<String> = known
        .iter()
        .filter(|k| k.2 < (3, 12))
        .map(|(node, v, _)| format!("{node} ({v})"))
        .collect();
    if !inv.rabbitmq.default_queue_types.is_empty() && !old.is_empty() {
        out.push(format!(
            "rabbitmq.default_queue_types needs RabbitMQ 3.12 or newer, and {} would run an older \
             one: before 3.12 rabbitmqctl cannot change the default queue type of an existing \
             vhost (update_vhost_metadata), so hactl could not keep it as the inventory says",
            old.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY_310: &str = "rabbitmq-server:
  Installed: 3.10.8-1.1+deb12u1
  Candidate: 3.10.8-1.1+deb12u1
  Version table:
 *** 3.10.8-1.1+deb12u1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
";
    const POLICY_40_NONE: &str = "rabbitmq-server:
  Installed: (none)
  Candidate: 4.0.5-6+deb13u2
  Version table:
     4.0.5-6+deb13u2 500
        500 http://deb.debian.org/debian trixie/main amd64 Packages
";

    #[test]
    fn reads_apt_cache_policy_and_dpkg_query() {
        assert_eq!(
            parse_candidate(POLICY_310).as_deref(),
            Some("3.10.8-1.1+deb12u1")
        );
        assert_eq!(
            parse_candidate(POLICY_40_NONE).as_deref(),
            Some("4.0.5-6+deb13u2")
        );
        assert_eq!(
            parse_candidate("rabbitmq-server:\n  Installed: (none)\n  Candidate: (none)\n"),
            None
        );
        assert_eq!(parse_candidate(""), None);
        assert_eq!(
            parse_installed("installed 3.10.8-1.1+deb12u1\n").as_deref(),
            Some("3.10.8-1.1+deb12u1")
        );
        assert_eq!(parse_installed("config-files 3.10.8-1.1+deb12u1"), None);
        assert_eq!(parse_installed("not-installed "), None);
        assert_eq!(parse_installed(""), None);
    }

    #[test]
    fn upstream_drops_epoch_and_revision() {
        assert_eq!(upstream("4.0.5-6+deb13u2"), "4.0.5");
        assert_eq!(upstream("3.10.8-1.1"), "3.10.8");
        assert_eq!(upstream("1:3.13.7-1"), "3.13.7");
        assert_eq!(upstream("4.1.0"), "4.1.0");
    }

    #[test]
    fn installed_wins_then_the_pin_then_the_candidate() {
        let i = Some("3.10.8-1.1".to_string());
        let c = Some("4.0.5-6".to_string());
        assert_eq!(
            detect(i.clone(), Some("4.0.5-6"), c.clone())
                .unwrap()
                .source,
            Source::Installed
        );
        let p = detect(None, Some("4.0.5-6+deb13u2"), c.clone()).unwrap();
        assert_eq!((p.source, p.upstream()), (Source::Pinned, "4.0.5"));
        assert_eq!(detect(None, None, c).unwrap().source, Source::Candidate);
        assert_eq!(detect(None, None, None), None);
    }

    fn inventory(extra: &str, node3: &str) -> Inventory {
        let yaml = format!(
            "cluster: {{name: t}}\ncookie: {{value: abc}}\nrabbitmq:\n  seed: n1\n{extra}\
             nodes:\n  - {{name: n1, address: 10.0.0.11, roles: [rabbitmq]}}\n  \
             - {{name: n2, address: 10.0.0.12, roles: [rabbitmq]}}\n  \
             - {{name: n3, address: 10.0.0.13, roles: [rabbitmq]{node3}}}\n"
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    fn nodes(versions: &[Option<&str>]) -> Vec<NodeVersion> {
        versions
            .iter()
            .enumerate()
            .map(|(i, v)| NodeVersion {
                node: format!("n{}", i + 1),
                detected: v.map(|v| Detected {
                    debian: v.to_string(),
                    source: Source::Candidate,
                }),
            })
            .collect()
    }

    #[test]
    fn one_version_and_a_plain_inventory_pass() {
        let inv = inventory("", "");
        let v = nodes(&[Some("4.0.5-6"), Some("4.0.5-6"), Some("4.0.4-1")]);
        assert_eq!(check(&inv, &v), Vec::<String>::new());
        let v = nodes(&[Some("3.10.8-1.1"); 3]);
        assert_eq!(check(&inv, &v), Vec::<String>::new());
    }

    #[test]
    fn unknown_and_mixed_versions_are_refused() {
        let inv = inventory("", "");
        let e = check(&inv, &nodes(&[Some("4.0.5-6"), None, None])).join("\n");
        assert!(e.contains("n2, n3") && e.contains("apt-get update"), "{e}");
        assert!(e.contains("rabbitmq.version"), "{e}");
        let e = check(&inv, &nodes(&[Some("3.10.8-1"), Some("4.0.5-6"), None])).join("\n");
        assert!(e.contains("different major versions"), "{e}");
        let e = check(
            &inv,
            &nodes(&[Some("3.12.1-1"), Some("3.13.7-1"), Some("3.13.7-1")]),
        );
        assert!(e[0].contains("different minor versions"), "{e:?}");
    }

    #[test]
    fn an_installed_version_other_than_the_pin_is_refused() {
        let inv = inventory("  version: \"3.10.8-1.1\"\n", "");
        let mut v = nodes(&[Some("3.10.8-1.1"), Some("3.10.8-1.2"), None]);
        v[2].detected = detect(None, Some("3.10.8-1.1"), None);
        assert!(
            check(&inv, &v).is_empty(),
            "candidates and pins are not installs"
        );
        v[1].detected.as_mut().unwrap().source = Source::Installed;
        let e = check(&inv, &v).join("\n");
        assert!(e.contains("n2 3.10.8 (installed 3.10.8-1.2)"), "{e}");
        assert!(e.contains("does not upgrade or downgrade"), "{e}");
    }

    #[test]
    fn ram_nodes_mirroring_and_queue_types_follow_the_version() {
        let inv = inventory("", ", node_type: ram");
        let e = check(&inv, &nodes(&[Some("4.0.5-6"); 3])).join("\n");
        assert!(e.contains("n3 (4.0.5)") && e.contains("Khepri"), "{e}");
        assert!(check(&inv, &nodes(&[Some("3.10.8-1"); 3])).is_empty());

        let ha = "  policies:\n    - {name: ha, pattern: '^ha', definition: {ha-mode: all}}\n";
        let inv = inventory(ha, "");
        let e = check(&inv, &nodes(&[Some("4.0.5-6"); 3])).join("\n");
        assert!(e.contains("removed in 4.0"), "{e}");
        assert!(check(&inv, &nodes(&[Some("3.10.8-1"); 3])).is_empty());

        let qq = "  policies:\n    - {name: q, pattern: '^q', apply_to: quorum_queues, \
                  definition: {delivery-limit: 5}}\n";
        let inv = inventory(qq, "");
        let e = check(&inv, &nodes(&[Some("3.10.8-1"); 3])).join("\n");
        assert!(e.contains("3.12"), "{e}");
        assert!(check(&inv, &nodes(&[Some("4.0.5-6"); 3])).is_empty());

        let dqt = "  default_queue_types: {\"/\": quorum}\n";
        let inv = inventory(dqt, "");
        let e = check(&inv, &nodes(&[Some("3.10.8-1"); 3])).join("\n");
        assert!(
            e.contains("update_vhost_metadata") && e.contains("n1 (3.10.8)"),
            "{e}"
        );
        assert!(check(&inv, &nodes(&[Some("3.12.0-1"); 3])).is_empty());
    }
}
