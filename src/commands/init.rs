//! `hactl init`: a commented starter inventory from flags. The text is loaded and validated by
//! the same loader as every command before it is written, so `hactl validate` accepts it as
//! written; an existing file is left alone unless `--force`.

use crate::cli::InitArgs;
use crate::envelope::Envelope;
use crate::exit::InvalidInput;
use crate::inventory;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

pub fn run(args: &InitArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let text = starter(args)?;
    if let Err(diags) = inventory::load::load_bytes(text.as_bytes(), &args.out) {
        let message = format!(
            "the flags make an inventory that does not validate; {} was not written",
            args.out.display()
        );
        return Err(super::rejected(diags, message));
    }
    write(&args.out, &text, args.force)?;
    let mut secrets = vec!["HACTL_COOKIE", "HACTL_APP_PASSWORD"];
    if !args.lbs.is_empty() {
        secrets.extend(["HACTL_VRRP_PASSWORD", "HACTL_STATS_PASSWORD"]);
    }
    eprintln!(
        "wrote {}: export {} (see its comments), then `hactl validate {0}` and \
         `hactl up {0} --dry-run`",
        args.out.display(),
        secrets.join(", ")
    );
    out.data(serde_json::json!({"file": args.out, "secrets": secrets}))
}

/// `NAME=ADDRESS` pairs from the flags.
fn pairs(list: &[String], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    list.iter()
        .map(|item| {
            item.split_once('=')
                .filter(|(n, a)| !n.is_empty() && !a.is_empty())
                .map(|(n, a)| (n.to_string(), a.to_string()))
                .ok_or_else(|| {
                    InvalidInput(format!("{flag} {item:?}: expected NAME=ADDRESS")).into()
                })
        })
        .collect()
}

/// The starter inventory's text. Values are written as YAML double-quoted strings (JSON
/// escaping), so no flag value can add a key or a line.
fn starter(args: &InitArgs) -> anyhow::Result<String> {
    let nodes = pairs(&args.nodes, "--nodes")?;
    let lbs = pairs(&args.lbs, "--lbs")?;
    let q = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let Some((seed, _)) = nodes.first() else {
        return Err(InvalidInput("--nodes needs at least one NAME=ADDRESS".into()).into());
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# hactl inventory, written by `hactl init`. Every field: inventories/example.yaml in\n\
         # hactl's repository. Check with `hactl validate FILE`, preview with `hactl up FILE\n\
         # --dry-run`, apply with `hactl up FILE`.\n\
         \n\
         cluster:\n  name: {}\n\
         \n\
         ssh:\n  user: {}\n  port: 22\n  connect_timeout: 10\n  command_timeout: 300",
        q(&args.cluster),
        q(&args.ssh_user)
    );
    if let Some(key) = &args.identity_file {
        let _ = writeln!(t, "  identity_file: {}", q(&key.to_string_lossy()));
    }
    let _ = writeln!(
        t,
        "\n# Secrets never live in this file: each is read from an environment variable (or use\n\
         # `file: PATH`). The cookie: at most 255 letters and digits, the same on every node, e.g.\n\
         #   export HACTL_COOKIE=$(tr -dc A-Za-z0-9 </dev/urandom | head -c 32)\n\
         cookie:\n  env: HACTL_COOKIE\n\
         \n\
         rabbitmq:\n  # The disc node every other node joins.\n  seed: {}\n  users:\n    \
         - name: app\n      password:\n        env: HACTL_APP_PASSWORD\n      tags: [management]\n      \
         permissions:\n        - vhost: \"/\"\n          configure: \".*\"\n          write: \".*\"\n          \
         read: \".*\"\n  # Policies (e.g. `hactl set-policy quorum`, or ha-all on RabbitMQ 3.x): see\n  \
         # inventories/example.yaml.",
        q(seed)
    );
    if !lbs.is_empty() {
        let (Some(vip), Some(interface)) = (&args.vip, &args.interface) else {
            return Err(InvalidInput(
                "--lbs needs --vip ADDRESS/PREFIX and --interface NAME (the VIP's interface)"
                    .into(),
            )
            .into());
        };
        // VRRPv3, which an IPv6 VIP runs, has no authentication.
        let auth = if vip.contains(':') {
            ""
        } else {
            "  auth_password:\n    env: HACTL_VRRP_PASSWORD\n"
        };
        let _ = writeln!(
            t,
            "\n# HAProxy on the load balancers, Keepalived moving the virtual IP between them.\n\
             loadbalancer:\n  vip: {}\n  interface: {}\n  virtual_router_id: {}\n{auth}  \
             stats:\n    user: stats\n    password:\n      env: HACTL_STATS_PASSWORD",
            q(vip),
            q(interface),
            args.router_id
        );
    }
    t.push_str("\nnodes:\n");
    for (name, address) in &nodes {
        let _ = writeln!(
            t,
            "  - name: {}\n    address: {}\n    roles: [rabbitmq]",
            q(name),
            q(address)
        );
    }
    // The first load balancer is the preferred VIP holder.
    for (i, (name, address)) in lbs.iter().enumerate() {
        let _ = writeln!(
            t,
            "  - name: {}\n    address: {}\n    roles: [loadbalancer]\n    priority: {}",
            q(name),
            q(address),
            150 - 50 * i.min(2)
        );
    }
    Ok(t)
}

/// Writes `text` to `path`: a new file only, unless `force` (then through a new temporary file
/// and a rename, so an existing symlink is replaced, never followed).
fn write(path: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    if !force && std::fs::symlink_metadata(path).is_ok() {
        return Err(InvalidInput(format!(
            "{} exists; hactl init leaves it alone (--force to replace it)",
            path.display()
        ))
        .into());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.hactl-init-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tmp.display()))?;
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
    let placed = written.and_then(|()| {
        if force {
            std::fs::rename(&tmp, path)
        } else {
            // hard_link fails if the name appeared meanwhile: never replace without --force.
            std::fs::hard_link(&tmp, path)
        }
    });
    let _ = std::fs::remove_file(&tmp);
    placed.map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
