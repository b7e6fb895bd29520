//! The renderer with hostile strings: the input is split on 0xff into values for names, a
//! pattern and every secret. Values the loader or the secret rules refuse are skipped, as
//! hactl would stop there. For the rest, rendering must not panic, and no value may add a
//! line to HAProxy's or Keepalived's config (a line break there would inject directives).
#![no_main]

use hactl::inventory::secrets::{SecretKind, problem};
use hactl::inventory::{Secrets, load};
use hactl::render::Renderer;
use hactl::secret::Secret;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// The co-located layout with a slot for each hostile name; `{}` markers are JSON strings.
const TEMPLATE: &str = r#"
cluster: {name: CLUSTER}
cookie: {env: UNUSED}
rabbitmq:
  seed: node1
  vhosts: ["/", VHOST]
  users:
    - {name: USER, password: {env: UNUSED}, tags: [administrator]}
  policies:
    - {name: POLICY, vhost: VHOST, pattern: PATTERN, definition: {max-length: 1}}
loadbalancer:
  vip: 10.99.0.100/24
  interface: eth0
  virtual_router_id: 42
  auth_password: {env: UNUSED}
  stats: {port: 9000, user: STATS_USER, password: {env: UNUSED}}
nodes:
  - {name: node1, address: 10.99.0.11, roles: [rabbitmq, loadbalancer], priority: 100}
  - {name: node2, address: 10.99.0.12, roles: [rabbitmq, loadbalancer], priority: 200}
  - {name: node3, address: 10.99.0.13, roles: [rabbitmq]}
"#;

const SLOTS: [&str; 6] = [
    "CLUSTER",
    "VHOST",
    "USER",
    "POLICY",
    "PATTERN",
    "STATS_USER",
];

fn render(values: &[String]) -> Option<BTreeMap<String, String>> {
    let mut text = TEMPLATE.to_string();
    for (slot, value) in SLOTS.iter().zip(values) {
        // A JSON string is a YAML double-quoted scalar.
        text = text.replace(slot, &serde_json::to_string(value).unwrap());
    }
    let loaded = load::load_str(&text, Path::new("fuzz.yaml")).ok()?;
    let secret = |i: usize, kind: SecretKind| {
        let v = values[i].clone();
        (problem(kind, &v).is_none() && !v.is_empty()).then(|| Secret::new(v))
    };
    let secrets = Secrets {
        cookie: secret(6, SecretKind::Cookie)?,
        vrrp_password: Some(secret(7, SecretKind::Vrrp)?),
        stats_password: Some(secret(8, SecretKind::StatsPassword)?),
        user_passwords: [(values[2].clone(), secret(9, SecretKind::UserPassword)?)].into(),
    };
    let renderer = Renderer::new(&loaded, None).ok()?;
    let mut files = BTreeMap::new();
    for node in &loaded.inventory.nodes {
        // A value a template cannot take is an error, which is fine; a panic is not.
        for f in renderer.host_files(&loaded, &secrets, node).ok()? {
            files.insert(format!("{}:{}", node.name, f.path), f.content);
        }
    }
    Some(files)
}

fn plain() -> Vec<String> {
    [
        "colo", "orders", "app", "ttl", "^q", "ops", "Cookie42", "vrrp", "stats", "pw",
    ]
    .map(String::from)
    .to_vec()
}

fuzz_target!(|data: &[u8]| {
    let mut values: Vec<String> = data
        .split(|b| *b == 0xff)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    let defaults = plain();
    values.extend(defaults[values.len().min(defaults.len())..].iter().cloned());
    let Some(files) = render(&values) else {
        return;
    };
    static BASELINE: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    let baseline = BASELINE.get_or_init(|| render(&plain()).expect("the plain values render"));
    for (name, content) in &files {
        if name.ends_with("haproxy.cfg") || name.ends_with("keepalived.conf") {
            let want = baseline[name].lines().count();
            assert_eq!(
                content.lines().count(),
                want,
                "{name} gained lines:\n{content}"
            );
        }
    }
});
