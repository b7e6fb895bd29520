//! Read-only health reads for `hactl status`: one SSH round trip per host and role, and the
//! parsers for what comes back. Nothing here changes anything on a host.
//!
//! Each read is a constant shell script (values only as `"$1"`, ...) whose output is split into
//! sections by lines starting with `@@`. `rabbitmqctl` starts an Erlang VM (~1 s) per call, so
//! the scripts call it only where the node runs (`pgrep` for the server VM first) and say on a marker
//! line whether they did, so the caller can count the calls.

use super::join::{self, ClusterStatus};
use crate::host::{Host, tail};
use crate::render::{HAPROXY_ADMIN_SOCKET, KEEPALIVED_STATE_FILE};
use crate::ssh::Cmd;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A RabbitMQ node's own view: is beam running, and if so its `cluster_status`.
/// `$1` is the server VM's pgrep pattern.
const RABBIT_SCRIPT: &str = r#"PATH=/usr/sbin:/usr/bin:/sbin:/bin
if ! pgrep -f -- "$1" >/dev/null 2>&1; then echo '@@beam stopped'; exit 0; fi
echo '@@beam running'
echo '@@cluster_status'
/usr/sbin/rabbitmqctl cluster_status --formatter json
rc=$?; echo; echo "@@rc $rc""#;

/// Mirrored queues per vhost (`$2`...): skipped where beam (pattern `$1`) does not run and on
/// RabbitMQ 4.x packages (classic mirroring was removed in 4.0; the columns do not exist there).
const QUEUES_SCRIPT: &str = r#"PATH=/usr/sbin:/usr/bin:/sbin:/bin
if ! pgrep -f -- "$1" >/dev/null 2>&1; then echo '@@beam stopped'; exit 0; fi
shift
v=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || true)
case "$v" in [4-9].*|[1-9][0-9]*) printf '@@skipped %s\n' "$v"; exit 0;; esac
for vhost in "$@"; do
  printf '@@vhost %s\n' "$vhost"
  /usr/sbin/rabbitmqctl list_queues -p "$vhost" name policy slave_pids synchronised_slave_pids --formatter json
  rc=$?; echo; echo "@@rc $rc"
done"#;

/// The HAProxy stats socket is read with `socat` when the host has it, else with the Perl of
/// `perl-base` (Essential on Debian and Ubuntu, so always there). `$1` is the socket.
const PERL_SHOW_STAT: &str = r#"use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Type => SOCK_STREAM) or die "cannot connect to $ARGV[0]: $!\n"; print $s "show stat\n"; print while <$s>;"#;

/// A load balancer: daemons, keepalived's state file, the addresses on the VIP's interface,
/// and HAProxy's `show stat`. `$1` socket, `$2` state file, `$3` interface, `$4` Perl reader.
const LB_SCRIPT: &str = r#"PATH=/usr/sbin:/usr/bin:/sbin:/bin
if pidof haproxy >/dev/null 2>&1; then echo '@@haproxy running'; else echo '@@haproxy stopped'; fi
if pidof keepalived >/dev/null 2>&1; then echo '@@keepalived running'; else echo '@@keepalived stopped'; fi
if [ -r "$2" ]; then echo '@@state'; cat -- "$2"; else echo '@@nostate'; fi
echo '@@addr'
ip -o addr show dev "$3" 2>&1
if [ ! -S "$1" ]; then echo "@@stat-error no socket $1"; exit 0; fi
if command -v socat >/dev/null 2>&1; then
  echo '@@stat socat'
  echo 'show stat' | socat -t 5 stdio "UNIX-CONNECT:$1" 2>&1
else
  echo '@@stat perl'
  perl -e "$4" "$1" 2>&1
fi
rc=$?; echo; echo "@@rc $rc""#;

/// `stdout` split at lines starting with `@@`: (the rest of that line, the lines after it).
pub fn sections(stdout: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in stdout.lines() {
        if let Some(head) = line.strip_prefix("@@") {
            out.push((head.to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// The first section whose header is `word` or starts with `word `; its header's rest and body.
fn section<'a>(secs: &'a [(String, String)], word: &str) -> Option<(&'a str, &'a str)> {
    secs.iter().find_map(|(h, b)| {
        let rest = h.strip_prefix(word)?;
        if rest.is_empty() {
            Some(("", b.as_str()))
        } else {
            rest.strip_prefix(' ').map(|r| (r, b.as_str()))
        }
    })
}

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

/// One server line of HAProxy's `show stat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backend {
    /// The `listen` section, e.g. `rabbitmq_amqp`.
    pub proxy: String,
    /// The server (a RabbitMQ node name).
    pub server: String,
    /// HAProxy's status: `UP`, `DOWN`, `UP 1/3`, `DOWN 1/2`, `MAINT`, `NOLB`, ...
    pub status: String,
    /// Result of the last health check, e.g. `L7OK`, `L4CON`.
    pub check: String,
}

impl Backend {
    /// Serving: `UP`, or `UP n/m` (up, a failed check or two into going down).
    pub fn is_up(&self) -> bool {
        self.status == "UP" || self.status.starts_with("UP ")
    }
}

/// Parses `show stat` CSV (header `# pxname,svname,...`): every server line (not the
/// FRONTEND/BACKEND aggregates).
pub fn parse_show_stat(csv: &str) -> anyhow::Result<Vec<Backend>> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| anyhow::anyhow!("show stat: no header line: {}", tail(csv)))?;
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| anyhow::anyhow!("show stat: no `{name}` column"))
    };
    let (px, sv, st) = (col("pxname")?, col("svname")?, col("status")?);
    let ck = col("check_status").ok();
    let mut out = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("").to_string();
        let server = get(sv);
        if server == "FRONTEND" || server == "BACKEND" || server.is_empty() {
            continue;
        }
        out.push(Backend {
            proxy: get(px),
            server,
            status: get(st),
            check: ck.map(get).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// A load balancer as read over SSH.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LbRead {
    pub haproxy_running: bool,
    pub keepalived_running: bool,
    /// From the notify script's state file: `MASTER`, `BACKUP`, `FAULT`, `STOP`; None when
    /// the file does not exist (keepalived never changed state since boot).
    pub keepalived_state: Option<String>,
    pub holds_vip: bool,
    pub backends: Vec<Backend>,
    /// How the stats socket was read (`socat` or `perl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_reader: Option<String>,
    /// Why the backends could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_error: Option<String>,
}

/// Whether `ip -o addr show` output lists `vip` (address, with or without prefix).
pub fn lists_address(ip_output: &str, vip: &str) -> bool {
    let addr = vip.split('/').next().unwrap_or(vip);
    ip_output.lines().any(|l| {
        let mut words = l.split_whitespace();
        while let Some(w) = words.next() {
            if (w == "inet" || w == "inet6")
                && words.next().and_then(|a| a.split('/').next()) == Some(addr)
            {
                return true;
            }
        }
        false
    })
}

/// Parses the output of [`LB_SCRIPT`].
pub fn parse_lb_read(stdout: &str, vip: &str) -> LbRead {
    let secs = sections(stdout);
    let mut read = LbRead {
        haproxy_running: section(&secs, "haproxy").is_some_and(|(s, _)| s == "running"),
        keepalived_running: section(&secs, "keepalived").is_some_and(|(s, _)| s == "running"),
        keepalived_state: section(&secs, "state")
            .map(|(_, b)| b.trim().to_string())
            .filter(|s| !s.is_empty()),
        holds_vip: section(&secs, "addr").is_some_and(|(_, b)| lists_address(b, vip)),
        ..Default::default()
    };
    if let Some((why, _)) = section(&secs, "stat-error") {
        read.stats_error = Some(why.to_string());
    } else if let Some((tool, body)) = section(&secs, "stat") {
        read.stats_reader = Some(tool.to_string());
        let rc = section(&secs, "rc").map(|(r, _)| r.trim().to_string());
        match parse_show_stat(body) {
            Ok(b) if rc.as_deref() == Some("0") => read.backends = b,
            Ok(_) => {
                read.stats_error = Some(format!(
                    "{tool} exited {}: {}",
                    rc.as_deref().unwrap_or("?"),
                    tail(body)
                ))
            }
            Err(e) => read.stats_error = Some(format!("{e:#}")),
        }
    } else {
        read.stats_error = Some(format!("unexpected output: {}", tail(stdout)));
    }
    read
}

/// Reads a load balancer in one round trip: haproxy and keepalived running, keepalived's state
/// file, whether it holds `vip` on `interface`, and HAProxy's backends from its admin socket.
pub async fn read_lb(host: &Host, vip: &str, interface: &str) -> anyhow::Result<LbRead> {
    let out = host
        .probe(&Cmd::sh(
            LB_SCRIPT,
            [
                HAPROXY_ADMIN_SOCKET,
                KEEPALIVED_STATE_FILE,
                interface,
                PERL_SHOW_STAT,
            ],
        ))
        .await?;
    Ok(parse_lb_read(&out.stdout, vip))
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

    const SHOW_STAT: &str = "# pxname,svname,qcur,status,weight,check_status\n\
        rabbitmq_amqp,FRONTEND,,OPEN,,\n\
        rabbitmq_amqp,node1,0,UP,1,L7OK\n\
        rabbitmq_amqp,node2,0,DOWN,1,L4CON\n\
        rabbitmq_amqp,node3,0,UP 1/3,1,L4TOUT\n\
        rabbitmq_amqp,BACKEND,0,UP,2,\n\n";

    #[test]
    fn parses_show_stat() {
        let b = parse_show_stat(SHOW_STAT).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b[1].server, "node2");
        assert!(!b[1].is_up());
        assert_eq!(b[1].check, "L4CON");
        assert!(b[0].is_up() && b[2].is_up());
        assert!(parse_show_stat("garbage").is_err());
    }

    #[test]
    fn parses_a_load_balancer() {
        let out = format!(
            "@@haproxy running\n@@keepalived stopped\n@@state\nMASTER\n@@addr\n\
             2: eth0    inet 10.0.0.14/24 brd 10.0.0.255 scope global eth0\\n\n\
             2: eth0    inet 10.0.0.100/24 scope global secondary eth0\\n\n\
             @@stat socat\n{SHOW_STAT}@@rc 0\n"
        );
        let r = parse_lb_read(&out, "10.0.0.100/24");
        assert!(r.haproxy_running && !r.keepalived_running);
        assert_eq!(r.keepalived_state.as_deref(), Some("MASTER"));
        assert!(r.holds_vip);
        assert_eq!(r.backends.len(), 3);
        assert_eq!(r.stats_reader.as_deref(), Some("socat"));
        let r = parse_lb_read(&out, "10.0.0.10/24");
        assert!(!r.holds_vip, "10.0.0.10 is not 10.0.0.100");
        let r = parse_lb_read(
            "@@haproxy stopped\n@@keepalived running\n@@nostate\n@@addr\n@@stat-error no socket /run/haproxy/admin.sock\n",
            "10.0.0.100/24",
        );
        assert!(r.stats_error.unwrap().contains("no socket"));
        assert_eq!(r.keepalived_state, None);
    }

    /// The Perl fallback really reads a UNIX socket the way HAProxy's answers: one command
    /// line in, the reply until the server closes.
    #[test]
    fn perl_reader_talks_to_a_unix_socket() {
        use std::io::{BufRead, BufReader, Write};
        if std::process::Command::new("perl")
            .arg("-e1")
            .status()
            .is_err()
        {
            eprintln!("perl is not installed here; skipping");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            let mut w = &stream;
            w.write_all(SHOW_STAT.as_bytes()).unwrap();
            line
        });
        let out = std::process::Command::new("perl")
            .arg("-e")
            .arg(PERL_SHOW_STAT)
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(server.join().unwrap(), "show stat\n");
        assert_eq!(String::from_utf8_lossy(&out.stdout), SHOW_STAT);
    }
}
