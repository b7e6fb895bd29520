//! RabbitMQ reads: a node's own view of its cluster (`cluster_status`) and the mirrored
//! queues of the inventory's vhosts (`list_queues`).

use super::{section, sections};
use crate::host::{Host, tail};
use crate::procs::proc_fns;
use crate::ssh::Cmd;
use crate::steps::join::{self, ClusterStatus};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A RabbitMQ node's own view: is beam running, and if so its `cluster_status`.
/// `$1` is the server VM's command-line pattern.
const RABBIT_SCRIPT: &str = concat!(
    proc_fns!(),
    r#"PATH=/usr/sbin:/usr/bin:/sbin:/bin
if ! cmdline_matches "$1"; then echo '@@beam stopped'; exit 0; fi
echo '@@beam running'
echo '@@cluster_status'
/usr/sbin/rabbitmqctl cluster_status --formatter json
rc=$?; echo; echo "@@rc $rc""#
);

/// Mirrored queues per vhost (`$2`...): skipped where beam (pattern `$1`) does not run and on
/// RabbitMQ 4.x packages (classic mirroring was removed in 4.0; the columns do not exist there).
const QUEUES_SCRIPT: &str = concat!(
    proc_fns!(),
    r#"PATH=/usr/sbin:/usr/bin:/sbin:/bin
if ! cmdline_matches "$1"; then echo '@@beam stopped'; exit 0; fi
shift
v=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || true)
case "$v" in [4-9].*|[1-9][0-9]*) printf '@@skipped %s\n' "$v"; exit 0;; esac
for vhost in "$@"; do
  printf '@@vhost %s\n' "$vhost"
  /usr/sbin/rabbitmqctl list_queues -p "$vhost" name policy slave_pids synchronised_slave_pids --formatter json
  rc=$?; echo; echo "@@rc $rc"
done"#
);

/// One resource alarm (`cluster_status`'s `alarms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alarm {
    pub node: String,
    /// `memory`, `disk` or `file_descriptors`.
    pub resource: String,
}

/// What one node says about its cluster (`rabbitmqctl cluster_status --formatter json`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    pub status: ClusterStatus,
    /// RabbitMQ version per node (`versions`).
    pub versions: BTreeMap<String, String>,
    /// Node → nodes it is partitioned from (`partitions`).
    pub partitions: BTreeMap<String, Vec<String>>,
    pub alarms: Vec<Alarm>,
}

impl ClusterView {
    pub fn members(&self) -> Vec<String> {
        let mut m: Vec<String> = self.status.members().cloned().collect();
        m.sort();
        m
    }
    pub fn running(&self) -> Vec<String> {
        let mut r = self.status.running_nodes.clone();
        r.sort();
        r
    }
}

/// Parses `cluster_status --formatter json`: membership through `join::parse_status`, plus
/// versions, partitions and alarms.
pub fn parse_cluster_view(json: &str) -> anyhow::Result<ClusterView> {
    let status = join::parse_status(json)?;
    let v: Value = serde_json::from_str(json.trim())?;
    let versions = v
        .get("versions")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(node, info)| {
                    let ver = info.get("rabbitmq_version")?.as_str()?;
                    Some((node.clone(), ver.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let partitions = v
        .get("partitions")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(node, with)| (node.clone(), strings(with)))
                .filter(|(_, with)| !with.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let alarms = v
        .get("alarms")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::Object(o) => Alarm {
                        node: o
                            .get("node")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        resource: o
                            .get("resource")
                            .or_else(|| o.get("type"))
                            .and_then(Value::as_str)
                            .unwrap_or("unknown")
                            .to_string(),
                    },
                    other => Alarm {
                        node: String::new(),
                        resource: other.as_str().map_or(other.to_string(), str::to_string),
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ClusterView {
        status,
        versions,
        partitions,
        alarms,
    })
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// A RabbitMQ node as read over SSH.
#[derive(Debug, Clone, Default)]
pub struct NodeRead {
    pub beam_running: bool,
    /// Its `cluster_status`, when beam runs and rabbitmqctl answered.
    pub view: Option<ClusterView>,
    /// Why the view is missing although beam runs.
    pub error: Option<String>,
    /// rabbitmqctl invocations this read made (0 or 1).
    pub rabbitmqctl_calls: u32,
}

/// Parses the output of [`RABBIT_SCRIPT`].
pub fn parse_node_read(stdout: &str, stderr: &str) -> NodeRead {
    let secs = sections(stdout);
    let mut read = NodeRead::default();
    match section(&secs, "beam") {
        Some(("running", _)) => read.beam_running = true,
        Some(("stopped", _)) => return read,
        _ => {
            read.error = Some(format!("unexpected output: {}", tail(stdout)));
            return read;
        }
    }
    let Some((_, body)) = section(&secs, "cluster_status") else {
        read.error = Some(format!("no cluster_status output: {}", tail(stderr)));
        return read;
    };
    read.rabbitmqctl_calls = 1;
    let rc = section(&secs, "rc").map(|(r, _)| r.trim().to_string());
    if rc.as_deref() != Some("0") {
        read.error = Some(format!(
            "rabbitmqctl cluster_status exited {}: {}",
            rc.as_deref().unwrap_or("?"),
            tail(if stderr.trim().is_empty() {
                body
            } else {
                stderr
            })
        ));
        return read;
    }
    match parse_cluster_view(body) {
        Ok(v) => read.view = Some(v),
        Err(e) => read.error = Some(format!("{e:#}")),
    }
    read
}

/// Reads a RabbitMQ node: whether beam runs, and its `cluster_status` (one rabbitmqctl call,
/// only when beam runs).
pub async fn read_node(host: &Host) -> anyhow::Result<NodeRead> {
    let out = host
        .probe(&Cmd::sh(
            RABBIT_SCRIPT,
            [crate::rabbitmq::SERVER_VM_PATTERN],
        ))
        .await?;
    Ok(parse_node_read(&out.stdout, &out.stderr))
}

/// A queue whose mirrors are not all synchronised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnsyncedQueue {
    pub vhost: String,
    pub name: String,
    pub policy: String,
    pub mirrors: usize,
    pub unsynchronised: usize,
}

/// What `list_queues` said, over all vhosts read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueRead {
    /// Where it was read.
    pub node: String,
    /// False when beam does not run there or RabbitMQ is 4.x (no classic mirroring).
    pub checked: bool,
    /// Why not checked, or what failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Queues with mirrors (`slave_pids` not empty).
    pub mirrored: usize,
    pub unsynchronised: Vec<UnsyncedQueue>,
    /// Vhosts whose read failed, with the reason.
    pub errors: Vec<String>,
    #[serde(skip)]
    pub rabbitmqctl_calls: u32,
    /// Not checked because the node runs RabbitMQ 4.x (no other node would answer otherwise).
    #[serde(skip)]
    pub version_skipped: bool,
}

/// Parses one vhost's `list_queues name policy slave_pids synchronised_slave_pids --formatter
/// json` into (queues with mirrors, unsynchronised queues).
pub fn parse_queues(vhost: &str, json: &str) -> anyhow::Result<(usize, Vec<UnsyncedQueue>)> {
    let v: Value = serde_json::from_str(json.trim())
        .map_err(|e| anyhow::anyhow!("list_queues output is not JSON: {e}"))?;
    let mut mirrored = 0;
    let mut unsynced = Vec::new();
    for q in v.as_array().map(Vec::as_slice).unwrap_or_default() {
        let slaves = strings(q.get("slave_pids").unwrap_or(&Value::Null));
        if slaves.is_empty() {
            continue;
        }
        mirrored += 1;
        let synced = strings(q.get("synchronised_slave_pids").unwrap_or(&Value::Null));
        let missing = slaves.iter().filter(|p| !synced.contains(p)).count();
        if missing > 0 {
            let s = |k: &str| q.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            unsynced.push(UnsyncedQueue {
                vhost: vhost.to_string(),
                name: s("name"),
                policy: s("policy"),
                mirrors: slaves.len(),
                unsynchronised: missing,
            });
        }
    }
    Ok((mirrored, unsynced))
}

/// Parses the output of [`QUEUES_SCRIPT`].
pub fn parse_queue_read(node: &str, stdout: &str, stderr: &str) -> QueueRead {
    let secs = sections(stdout);
    let mut read = QueueRead {
        node: node.to_string(),
        ..Default::default()
    };
    if section(&secs, "beam").is_some() {
        read.note = Some(format!("RabbitMQ does not run on {node}"));
        return read;
    }
    if let Some((version, _)) = section(&secs, "skipped") {
        read.note = Some(format!(
            "RabbitMQ {version} has no classic queue mirroring (removed in 4.0)"
        ));
        read.version_skipped = true;
        return read;
    }
    read.checked = true;
    let mut i = 0;
    while i < secs.len() {
        let (head, body) = &secs[i];
        if let Some(vhost) = head.strip_prefix("vhost ") {
            read.rabbitmqctl_calls += 1;
            let rc = secs
                .get(i + 1)
                .and_then(|(h, _)| h.strip_prefix("rc "))
                .unwrap_or("?");
            if rc == "0" {
                match parse_queues(vhost, body) {
                    Ok((m, u)) => {
                        read.mirrored += m;
                        read.unsynchronised.extend(u);
                    }
                    Err(e) => read.errors.push(format!("vhost {vhost}: {e:#}")),
                }
            } else {
                read.errors.push(format!(
                    "vhost {vhost}: rabbitmqctl list_queues exited {rc}: {}",
                    tail(if stderr.trim().is_empty() {
                        body
                    } else {
                        stderr
                    })
                ));
            }
        }
        i += 1;
    }
    if read.rabbitmqctl_calls == 0 && read.errors.is_empty() && !stderr.trim().is_empty() {
        read.errors.push(tail(stderr));
    }
    read
}

/// Lists the mirrored queues of `vhosts` on `host` (one rabbitmqctl call per vhost; none when
/// RabbitMQ does not run there or is 4.x).
pub async fn read_queues(host: &Host, vhosts: &[String]) -> anyhow::Result<QueueRead> {
    let args = std::iter::once(crate::rabbitmq::SERVER_VM_PATTERN.to_string())
        .chain(vhosts.iter().map(|v| v.to_string()));
    let out = host.probe(&Cmd::sh(QUEUES_SCRIPT, args)).await?;
    Ok(parse_queue_read(host.name(), &out.stdout, &out.stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = r#"{"alarms":[{"node":"rabbit@n1","resource":"memory","type":"resource_limit"}],
        "disk_nodes":["rabbit@n1","rabbit@n2","rabbit@n3"],"ram_nodes":[],
        "running_nodes":["rabbit@n3","rabbit@n1"],
        "partitions":{"rabbit@n1":["rabbit@n3"],"rabbit@n2":[]},
        "versions":{"rabbit@n1":{"erlang_version":"25.2.3","rabbitmq_version":"3.10.8"}}}"#;

    #[test]
    fn parses_the_cluster_view() {
        let v = parse_cluster_view(STATUS).unwrap();
        assert_eq!(v.members(), ["rabbit@n1", "rabbit@n2", "rabbit@n3"]);
        assert_eq!(v.running(), ["rabbit@n1", "rabbit@n3"]);
        assert_eq!(v.versions["rabbit@n1"], "3.10.8");
        assert_eq!(v.partitions.len(), 1);
        assert_eq!(v.partitions["rabbit@n1"], ["rabbit@n3"]);
        assert_eq!(
            v.alarms,
            [Alarm {
                node: "rabbit@n1".into(),
                resource: "memory".into()
            }]
        );
    }

    #[test]
    fn node_read_outcomes() {
        let r = parse_node_read("@@beam stopped\n", "");
        assert!(!r.beam_running && r.view.is_none() && r.error.is_none());
        assert_eq!(r.rabbitmqctl_calls, 0);
        let r = parse_node_read(
            &format!("@@beam running\n@@cluster_status\n{STATUS}\n@@rc 0\n"),
            "",
        );
        assert!(r.beam_running && r.view.is_some(), "{r:?}");
        assert_eq!(r.rabbitmqctl_calls, 1);
        let r = parse_node_read(
            "@@beam running\n@@cluster_status\n@@rc 69\n",
            "Error: unable to perform an operation on node 'rabbit@n1'\n",
        );
        assert_eq!(r.rabbitmqctl_calls, 1);
        let e = r.error.unwrap();
        assert!(
            e.contains("exited 69") && e.contains("unable to perform"),
            "{e}"
        );
    }

    #[test]
    fn unsynchronised_mirrors_are_found() {
        let json = r##"[
{"name":"plain.q","policy":"","slave_pids":"","synchronised_slave_pids":""}
,{"name":"ha.ok","policy":"ha-all","slave_pids":["#PID<1.2.0>","#PID<3.4.0>"],"synchronised_slave_pids":["#PID<3.4.0>","#PID<1.2.0>"]}
,{"name":"ha.lag","policy":"ha-all","slave_pids":["#PID<1.5.0>","#PID<3.6.0>"],"synchronised_slave_pids":["#PID<3.6.0>"]}
,{"name":"ha.none","policy":"ha-two","slave_pids":["#PID<1.7.0>"],"synchronised_slave_pids":""}
]"##;
        let (mirrored, unsynced) = parse_queues("/", json).unwrap();
        assert_eq!(mirrored, 3);
        let names: Vec<&str> = unsynced.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["ha.lag", "ha.none"]);
        assert_eq!(unsynced[0].unsynchronised, 1);
        assert_eq!(unsynced[0].mirrors, 2);

        let out = format!("@@vhost /\n{json}\n@@rc 0\n@@vhost other\n@@rc 2\n");
        let r = parse_queue_read("n1", &out, "Error: vhost other does not exist\n");
        assert!(r.checked);
        assert_eq!(r.rabbitmqctl_calls, 2);
        assert_eq!(r.unsynchronised.len(), 2);
        assert_eq!(r.errors.len(), 1);
        assert!(r.errors[0].contains("does not exist"), "{:?}", r.errors);

        let r = parse_queue_read("n1", "@@skipped 4.0.5-1\n", "");
        assert!(!r.checked && r.rabbitmqctl_calls == 0 && r.version_skipped);
        assert!(r.note.unwrap().contains("4.0.5"));
        let r = parse_queue_read("n1", "@@beam stopped\n", "");
        assert!(!r.checked);
    }
}
