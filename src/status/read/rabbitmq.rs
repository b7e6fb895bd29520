//! RabbitMQ reads: a node's own view of its cluster and the mirrored queues of the
//! inventory's vhosts, through the management API when it answers, else `rabbitmqctl`
//! (`cluster_status`, `list_queues`), each CLI call only where the server VM runs.

use super::{section, sections};
use crate::host::{Host, tail};
use crate::procs::proc_fns;
use crate::rabbitmq::ctl;
use crate::ssh::{Cmd, Output};
use crate::steps::join::{self, ClusterStatus};
use crate::steps::management::{self, Api, ApiNode};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Whether mirrored queues can be read here: `@@beam stopped` where the server VM (pattern
/// `$1`) does not run, `@@skipped VERSION` on RabbitMQ 4.x packages (classic mirroring was
/// removed in 4.0; the columns do not exist there).
const QUEUES_SCRIPT: &str = concat!(
    proc_fns!(),
    r#"PATH=/usr/sbin:/usr/bin:/sbin:/bin
if ! cmdline_matches "$1"; then echo '@@beam stopped'; exit 0; fi
v=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || true)
case "$v" in [4-9].*|[1-9][0-9]*) printf '@@skipped %s\n' "$v";; esac"#
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
}

/// A node's view from `GET /api/nodes`, as `cluster_status` would give it.
pub fn view_of(nodes: &[ApiNode]) -> ClusterView {
    let mut alarms = Vec::new();
    for n in nodes {
        for (on, resource) in [(n.mem_alarm, "memory"), (n.disk_free_alarm, "disk")] {
            if on {
                alarms.push(Alarm {
                    node: n.name.clone(),
                    resource: resource.into(),
                });
            }
        }
    }
    ClusterView {
        status: management::cluster_status(nodes),
        versions: nodes
            .iter()
            .filter_map(|n| Some((n.name.clone(), n.rabbitmq_version()?.to_string())))
            .collect(),
        partitions: nodes
            .iter()
            .filter(|n| !n.partitions.is_empty())
            .map(|n| (n.name.clone(), n.partitions.clone()))
            .collect(),
        alarms,
    }
}

/// What a failed rabbitmqctl call said: stderr, else stdout.
fn failure(what: &str, out: &Output) -> String {
    let why = if out.stderr.trim().is_empty() {
        &out.stdout
    } else {
        &out.stderr
    };
    format!("rabbitmqctl {what} exited {}: {}", out.status, tail(why))
}

/// Reads a RabbitMQ node: whether beam runs, and if so its view of the cluster (management
/// API, else one `cluster_status`; the API does not answer while the app is stopped).
pub async fn read_node(host: &Host, api: Option<&Api>) -> anyhow::Result<NodeRead> {
    let mut read = NodeRead::default();
    if !host.rabbitmq_running().await? {
        return Ok(read);
    }
    read.beam_running = true;
    if let Some(api) = api {
        match tokio::try_join!(api.nodes(host), api.version(host)) {
            Ok((nodes, version)) => {
                let mut view = view_of(&nodes);
                view.versions
                    .insert(crate::rabbitmq::node_name(host.name()), version);
                read.view = Some(view);
                return Ok(read);
            }
            Err(e) => management::fell_back(host, &e),
        }
    }
    let out = host
        .probe(&ctl(["cluster_status", "--formatter", "json"]))
        .await?;
    if out.status != 0 {
        read.error = Some(failure("cluster_status", &out));
        return Ok(read);
    }
    match parse_cluster_view(&out.stdout) {
        Ok(v) => read.view = Some(v),
        Err(e) => read.error = Some(format!("{e:#}")),
    }
    Ok(read)
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
    /// Not checked because the node runs RabbitMQ 4.x (no other node would answer otherwise).
    #[serde(skip)]
    pub version_skipped: bool,
}

/// Parses one vhost's queues into (queues with mirrors, unsynchronised queues): the
/// management API's list (`slave_nodes`, `synchronised_slave_nodes`) or `list_queues name
/// policy slave_pids synchronised_slave_pids --formatter json` (`slave_pids`, ...).
pub fn parse_queues(vhost: &str, json: &Value) -> (usize, Vec<UnsyncedQueue>) {
    let mut mirrored = 0;
    let mut unsynced = Vec::new();
    let either = |q: &Value, api: &str, cli: &str| {
        strings(q.get(api).or_else(|| q.get(cli)).unwrap_or(&Value::Null))
    };
    for q in json.as_array().map(Vec::as_slice).unwrap_or_default() {
        let slaves = either(q, "slave_nodes", "slave_pids");
        if slaves.is_empty() {
            continue;
        }
        mirrored += 1;
        let synced = either(q, "synchronised_slave_nodes", "synchronised_slave_pids");
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
    (mirrored, unsynced)
}

/// One vhost's queues through `rabbitmqctl list_queues`.
async fn list_queues(host: &Host, vhost: &str) -> anyhow::Result<Value> {
    let out = host
        .probe(&ctl([
            "list_queues",
            "-p",
            vhost,
            "name",
            "policy",
            "slave_pids",
            "synchronised_slave_pids",
            "--formatter",
            "json",
        ]))
        .await?;
    if out.status != 0 {
        anyhow::bail!("{}", failure("list_queues", &out));
    }
    serde_json::from_str(out.stdout.trim())
        .map_err(|e| anyhow::anyhow!("list_queues output is not JSON: {e}"))
}

/// Lists the mirrored queues of `vhosts` on `host` (management API, else one rabbitmqctl
/// call per vhost; nothing when RabbitMQ does not run there or is 4.x).
pub async fn read_queues(
    host: &Host,
    vhosts: &[String],
    api: Option<&Api>,
) -> anyhow::Result<QueueRead> {
    let node = host.name();
    let out = host
        .probe(&Cmd::sh(
            QUEUES_SCRIPT,
            [crate::rabbitmq::SERVER_VM_PATTERN],
        ))
        .await?;
    let mut read = QueueRead {
        node: node.to_string(),
        ..Default::default()
    };
    let secs = sections(&out.stdout);
    if section(&secs, "beam").is_some() {
        read.note = Some(format!("RabbitMQ does not run on {node}"));
        return Ok(read);
    }
    if let Some((version, _)) = section(&secs, "skipped") {
        read.note = Some(format!(
            "RabbitMQ {version} has no classic queue mirroring (removed in 4.0)"
        ));
        read.version_skipped = true;
        return Ok(read);
    }
    read.checked = true;
    let mut api = api;
    for vhost in vhosts {
        let listed = match api {
            Some(a) => match a.mirrored_queues(host, vhost).await {
                Ok(v) => Ok(v),
                Err(e) => {
                    // Not answering for one vhost: it will not for the next either.
                    management::fell_back(host, &e);
                    api = None;
                    list_queues(host, vhost).await
                }
            },
            None => list_queues(host, vhost).await,
        };
        match listed {
            Ok(json) => {
                let (m, u) = parse_queues(vhost, &json);
                read.mirrored += m;
                read.unsynchronised.extend(u);
            }
            Err(e) => read.errors.push(format!("vhost {vhost}: {e:#}")),
        }
    }
    Ok(read)
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
    fn the_api_view_matches_cluster_status() {
        let nodes: Vec<ApiNode> = serde_json::from_str(
            r#"[{"name":"rabbit@n1","type":"disc","running":true,"partitions":["rabbit@n3"],
                 "mem_alarm":true,"disk_free_alarm":false,
                 "applications":[{"name":"rabbit","version":"3.10.8"}]},
                {"name":"rabbit@n2","type":"disc","running":false},
                {"name":"rabbit@n3","type":"disc","running":true,"partitions":[],
                 "applications":[{"name":"rabbit","version":"3.10.8"}]}]"#,
        )
        .unwrap();
        let api = view_of(&nodes);
        let cli = parse_cluster_view(STATUS).unwrap();
        assert_eq!(api.members(), cli.members());
        assert_eq!(api.running(), cli.running());
        assert_eq!(api.partitions, cli.partitions);
        assert_eq!(api.alarms, cli.alarms);
        assert_eq!(api.versions["rabbit@n1"], "3.10.8");
    }

    #[test]
    fn unsynchronised_mirrors_are_found() {
        let json = r##"[
{"name":"plain.q","policy":"","slave_pids":"","synchronised_slave_pids":""}
,{"name":"ha.ok","policy":"ha-all","slave_pids":["#PID<1.2.0>","#PID<3.4.0>"],"synchronised_slave_pids":["#PID<3.4.0>","#PID<1.2.0>"]}
,{"name":"ha.lag","policy":"ha-all","slave_pids":["#PID<1.5.0>","#PID<3.6.0>"],"synchronised_slave_pids":["#PID<3.6.0>"]}
,{"name":"ha.none","policy":"ha-two","slave_pids":["#PID<1.7.0>"],"synchronised_slave_pids":""}
]"##;
        let json: Value = serde_json::from_str(json).unwrap();
        let (mirrored, unsynced) = parse_queues("/", &json);
        assert_eq!(mirrored, 3);
        let names: Vec<&str> = unsynced.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["ha.lag", "ha.none"]);
        assert_eq!(unsynced[0].unsynchronised, 1);
        assert_eq!(unsynced[0].mirrors, 2);
        // The management API names the mirrors' nodes instead of their processes.
        let api = serde_json::json!([
            {"name": "ha.ok", "policy": "ha-all", "slave_nodes": ["rabbit@n2", "rabbit@n3"],
             "synchronised_slave_nodes": ["rabbit@n3", "rabbit@n2"]},
            {"name": "ha.lag", "policy": "ha-all", "slave_nodes": ["rabbit@n2", "rabbit@n3"],
             "synchronised_slave_nodes": ["rabbit@n3"]},
            {"name": "plain.q", "policy": "", "slave_nodes": [], "synchronised_slave_nodes": []}
        ]);
        let (mirrored, unsynced) = parse_queues("/", &api);
        assert_eq!((mirrored, unsynced.len()), (2, 1));
        assert_eq!(unsynced[0].name, "ha.lag");
    }
}
