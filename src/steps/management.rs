//! Reads of a node's live state, and changes to the definitions, through its management API,
//! over the host's own SSH connection (a `direct-tcpip` channel to the node's management port):
//! a few milliseconds where each `rabbitmqctl` call starts an Erlang VM (~1 s, more under
//! load). Used when the inventory enables the management plugin and has a user tagged
//! `administrator` whose password it knows; every caller falls back to `rabbitmqctl` when a
//! request fails (plugin not running, user not created yet, password changed in the inventory).
//! The password travels only inside the SSH connection: no remote process, no argv.
//!
//! Before the inventory's administrator exists (a node's first boot), a request it is refused
//! is sent again as RabbitMQ's built-in `guest`, whose well-known password is no secret and
//! which may log in from loopback only: so only where hactl reaches the node on loopback.
//! That is how the definitions create that administrator (and delete `guest`) without an
//! Erlang VM.

use super::join::ClusterStatus;
use crate::host::Host;
use crate::inventory::endpoints::percent_encode;
use crate::inventory::{Inventory, User};
use crate::rabbitmq::feature_flags::Flag;
use crate::secret::Secret;
use crate::ssh::{HttpRequest, HttpResponse};
use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

/// Who reads, and on which port.
pub struct Api {
    user: String,
    password: Secret,
    port: u16,
    /// The node's loopback address (`127.0.0.1`, or `::1` for an IPv6 cluster).
    loopback: &'static str,
    /// With TLS, plain HTTP listens on the node's loopback only.
    tls: bool,
}

/// RabbitMQ's built-in user, created with this password on a blank node's first boot.
const GUEST: &str = "guest";

/// One node as `GET /api/nodes` lists it (a stopped member has only name, type, running).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApiNode {
    pub name: String,
    /// `disc` or `ram`.
    #[serde(rename = "type")]
    pub kind: String,
    pub running: bool,
    /// Nodes this one is partitioned from.
    pub partitions: Vec<String>,
    pub mem_alarm: bool,
    pub disk_free_alarm: bool,
    pub applications: Vec<Application>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Application {
    pub name: String,
    pub version: String,
}

impl ApiNode {
    /// The RabbitMQ version it runs (listed only for running nodes whose statistics have been
    /// collected).
    pub fn rabbitmq_version(&self) -> Option<&str> {
        self.applications
            .iter()
            .find(|a| a.name == "rabbit")
            .map(|a| a.version.as_str())
    }
}

impl Api {
    /// The reader for `inv`: its first user tagged `administrator` (the definitions and
    /// feature flags need that tag), with the password `password` gives for it. None when the
    /// management plugin is off or there is no such user or password.
    pub fn new(inv: &Inventory, password: impl FnOnce(&User) -> Option<Secret>) -> Option<Api> {
        if !inv.rabbitmq.management_enabled() {
            return None;
        }
        let user = inv
            .rabbitmq
            .users
            .iter()
            .find(|u| u.tags.iter().any(|t| t == "administrator"))?;
        Some(Api {
            user: user.name.clone(),
            password: password(user)?,
            port: inv.rabbitmq.management_port,
            loopback: match inv.rabbitmq_ipv6() {
                true => "::1",
                false => "127.0.0.1",
            },
            tls: inv.tls.is_some(),
        })
    }

    /// Where `host`'s management listener is reached, and whether that is loopback: with TLS
    /// and on a plain RabbitMQ host (listening on every address) it is; a host that is also a
    /// load balancer listens on its own address only (rabbitmq.conf.tera).
    fn address<'a>(&'a self, host: &'a Host) -> (&'a str, bool) {
        match self.tls || !host.node.is_loadbalancer() {
            true => (self.loopback, true),
            false => (&host.node.address, false),
        }
    }

    /// `GET path` on `host`'s own management listener, as JSON.
    pub async fn get(&self, host: &Host, path: &str) -> anyhow::Result<Value> {
        let r = self.send(host, "GET", path, None).await?;
        if r.status != 200 {
            bail!("management API: GET {path} answered HTTP {}", r.status);
        }
        serde_json::from_slice(&r.body)
            .with_context(|| format!("management API: GET {path} is not JSON"))
    }

    /// `method path` with the JSON body `json` (or none): a change, done when the API answers
    /// 2xx.
    pub async fn change(
        &self,
        host: &Host,
        method: &str,
        path: &str,
        json: Option<&Value>,
    ) -> anyhow::Result<()> {
        let body = json.map(Value::to_string);
        let r = self.send(host, method, path, body.as_deref()).await?;
        if !(200..300).contains(&r.status) {
            let why = String::from_utf8_lossy(&r.body);
            bail!(
                "management API: {method} {path} answered HTTP {}: {}",
                r.status,
                why.trim()
            );
        }
        Ok(())
    }

    /// Creates or updates the user `name` with the salted SHA-256 `password_hash` (RabbitMQ's
    /// default hashing) and `tags`. The body derives from a password: an error names the
    /// status only, never what the node echoed of it.
    pub async fn put_user(
        &self,
        host: &Host,
        name: &str,
        password_hash: &Secret,
        tags: &[String],
    ) -> anyhow::Result<()> {
        let body = Secret::new(
            serde_json::json!({
                "password_hash": password_hash.expose(),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": tags.join(","),
            })
            .to_string(),
        );
        let path = format!("/api/users/{}", percent_encode(name));
        let r = self.send(host, "PUT", &path, Some(body.expose())).await?;
        if !(200..300).contains(&r.status) {
            bail!("management API: PUT {path} answered HTTP {}", r.status);
        }
        Ok(())
    }

    /// The request as the inventory's administrator; refused that (HTTP 401) on loopback, as
    /// `guest` (see the module doc).
    async fn send(
        &self,
        host: &Host,
        method: &str,
        path: &str,
        json: Option<&str>,
    ) -> anyhow::Result<HttpResponse> {
        let (address, loopback) = self.address(host);
        let req = HttpRequest { method, path, json };
        let r = self
            .send_as(host, address, &req, &self.user, &self.password)
            .await?;
        if r.status == 401 && loopback && self.user != GUEST {
            let guest = Secret::new(GUEST.to_string());
            return self.send_as(host, address, &req, GUEST, &guest).await;
        }
        Ok(r)
    }

    async fn send_as(
        &self,
        host: &Host,
        address: &str,
        req: &HttpRequest<'_>,
        user: &str,
        password: &Secret,
    ) -> anyhow::Result<HttpResponse> {
        host.reporter.command(
            host.name(),
            format_args!(
                "{} {} (management API on {address} port {}, as {user})",
                req.method, req.path, self.port
            ),
        );
        Ok(host
            .conn
            .http(address, self.port, req, user, password)
            .await?)
    }

    /// Every member as `host` sees it (`GET /api/nodes`).
    pub async fn nodes(&self, host: &Host) -> anyhow::Result<Vec<ApiNode>> {
        let v = self
            .get(
                host,
                "/api/nodes?columns=name,type,running,partitions,mem_alarm,disk_free_alarm,applications",
            )
            .await?;
        serde_json::from_value(v).context("management API: unexpected /api/nodes")
    }

    /// The RabbitMQ version `host` runs (`GET /api/overview`; `/api/nodes` lists versions only
    /// once the node's statistics have been collected, seconds after it started).
    pub async fn version(&self, host: &Host) -> anyhow::Result<String> {
        let v = self.get(host, "/api/overview").await?;
        v.get("rabbitmq_version")
            .and_then(Value::as_str)
            .map(str::to_string)
            .context("management API: /api/overview names no rabbitmq_version")
    }

    /// The cluster's definitions, as `rabbitmqctl export_definitions` gives them.
    pub async fn definitions(&self, host: &Host) -> anyhow::Result<Value> {
        self.get(host, "/api/definitions").await
    }

    pub async fn feature_flags(&self, host: &Host) -> anyhow::Result<Vec<Flag>> {
        let v = self
            .get(host, "/api/feature-flags?columns=name,state,stability")
            .await?;
        serde_json::from_value(v).context("management API: unexpected /api/feature-flags")
    }

    /// The queues of `vhost` with their mirrors' nodes.
    pub async fn mirrored_queues(&self, host: &Host, vhost: &str) -> anyhow::Result<Value> {
        let path = format!(
            "/api/queues/{}?columns=name,policy,slave_nodes,synchronised_slave_nodes",
            percent_encode(vhost)
        );
        self.get(host, &path).await
    }
}

/// Membership as `cluster_status` reports it, from `GET /api/nodes`.
pub fn cluster_status(nodes: &[ApiNode]) -> ClusterStatus {
    let names = |pick: &dyn Fn(&ApiNode) -> bool| {
        nodes
            .iter()
            .filter(|n| pick(n))
            .map(|n| n.name.clone())
            .collect()
    };
    ClusterStatus {
        disk_nodes: names(&|n| n.kind != "ram"),
        ram_nodes: names(&|n| n.kind == "ram"),
        running_nodes: names(&|n| n.running),
    }
}

/// A management read failed: say so with -v, and read with `rabbitmqctl` instead.
pub fn fell_back(host: &Host, err: &anyhow::Error) {
    host.reporter.command(
        host.name(),
        format_args!("{err:#}; reading with rabbitmqctl instead"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_give_the_cluster_status_and_versions() {
        let nodes: Vec<ApiNode> = serde_json::from_str(
            r#"[{"name":"rabbit@n1","type":"disc","running":true,"partitions":[],
                 "mem_alarm":false,"disk_free_alarm":true,
                 "applications":[{"name":"rabbit","description":"RabbitMQ","version":"3.10.8"}]},
                {"name":"rabbit@n2","type":"ram","running":true},
                {"name":"rabbit@n3","type":"disc","running":false}]"#,
        )
        .unwrap();
        let s = cluster_status(&nodes);
        assert_eq!(s.disk_nodes, ["rabbit@n1", "rabbit@n3"]);
        assert_eq!(s.ram_nodes, ["rabbit@n2"]);
        assert_eq!(s.running_nodes, ["rabbit@n1", "rabbit@n2"]);
        assert_eq!(nodes[0].rabbitmq_version(), Some("3.10.8"));
        assert_eq!(nodes[2].rabbitmq_version(), None);
        assert!(nodes[0].disk_free_alarm);
    }
}
