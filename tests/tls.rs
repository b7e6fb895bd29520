//! AMQP over TLS (issue #17), on `lab up 5` with the lab's inventory (node1..node3 RabbitMQ,
//! node4 and node5 load balancers) and a `tls:` section that turns plain AMQP off:
//!
//! 1. a dry run writes no certificate; the cold `up` is exactly its plan; its output (`-v`)
//!    carries no key material;
//! 2. checked without hactl: every node's key is `rabbitmq:rabbitmq 0400`, nothing listens on
//!    5672, VIP:5672 is closed; `openssl s_client` against VIP:5671 verifies the chain and the
//!    VIP's DNS name with the cluster CA, and fails without it; through the VIP, over TLS,
//!    RabbitMQ answers the AMQP 0-9-1 header;
//! 3. a re-run changes nothing and makes no certificate;
//! 4. a new `vip_name` makes every node certificate again; `up` restarts the nodes one at a
//!    time, and the new name verifies where the old one no longer does.
//!
//! Needs root; without it the test skips loudly (see common::lab).

mod common;

use common::lab::Lab;
use common::report::{Run, actions, assert_dry_run_was_the_plan, changed_steps};
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const RABBITS: [&str; 3] = ["node1", "node2", "node3"];
const LBS: [&str; 2] = ["node4", "node5"];
/// Bound on one `hactl` run on a busy 2-core machine.
const BOUND: Duration = Duration::from_secs(600);

fn hactl(what: &str, args: &[&str]) -> Run {
    Run::hactl(what, args, BOUND)
}

/// `openssl s_client` to `vip:5671` trusting only `ca` (no system store), checking `name`;
/// `stdin` is sent after the handshake. Returns (exit status, stdout).
fn s_client(vip: &str, ca: &Path, name: &str, stdin: &[u8]) -> (bool, String) {
    let mut child = Command::new("timeout")
        .args(["20", "openssl", "s_client", "-quiet", "-ign_eof"])
        .args(["-connect", &format!("{vip}:5671"), "-servername", name])
        .args(["-verify_return_error", "-verify_hostname", name])
        .args(["-no-CApath", "-no-CAstore", "-CAfile"])
        .arg(ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    {
        use std::io::Write as _;
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin).expect("write to s_client");
    }
    let out = child.wait_with_output().expect("wait for s_client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "s_client {vip}:5671 as {name} with {}: {} ({} bytes out; stderr: {})",
        ca.display(),
        out.status,
        stdout.len(),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    (out.status.success(), stdout)
}

/// The AMQP 0-9-1 protocol header; RabbitMQ answers with Connection.Start, then closes the
/// connection when no Start-Ok follows (its handshake timeout, 10 s).
const AMQP_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";

fn amqp_over_tls(vip: &str, ca: &Path, name: &str) -> bool {
    let (_, out) = s_client(vip, ca, name, AMQP_HEADER);
    out.contains("PLAIN")
}

fn closed(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("socket address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err()
}

#[test]
fn a_tls_only_cluster_serves_amqps_through_the_vip() {
    let Some(lab) = Lab::up(5) else { return };
    let inventory = lab.write_inventory("lab");
    let base = fs::read_to_string(&inventory).expect("read inventory");
    let with_name = |name: &str| {
        format!(
            "{base}\ntls:\n  generated:\n    dir: pki\n  amqp_plain: false\n  vip_name: {name}\n"
        )
    };
    fs::write(&inventory, with_name("mq.hactl-lab")).expect("write inventory");
    let inv = inventory.to_str().expect("utf-8 path");
    let pki = inventory.with_file_name("pki");
    // The lab's state directory outlives a lab: start without an earlier run's CA.
    if pki.exists() {
        fs::remove_dir_all(&pki).expect("remove an earlier run's pki");
    }
    let ca = pki.join("ca.pem");
    let vip = format!("{}.100", lab.subnet());

    // 1. Dry run, then the cold build.
    let dry = hactl("up --dry-run (tls)", &["up", inv, "--dry-run", "--json"]);
    let dry = dry.expect_code(0).json();
    assert!(!pki.exists(), "a dry run writes no certificate");
    let cold = hactl("up (tls)", &["up", inv, "--json", "-v"]);
    let report = cold.expect_code(0).json();
    assert_eq!(report["outcome"], "ok");
    assert_dry_run_was_the_plan(&dry, &report, "tls cold up");
    let output = format!("{}{}", cold.stdout(), cold.stderr());
    assert!(output.contains("tls: made a new cluster CA"), "{output}");
    for node in RABBITS {
        let key = fs::read_to_string(pki.join(format!("{node}-key.pem"))).expect("read key");
        let body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!body.is_empty(), "{node}: the key file has a body");
        for line in body {
            assert!(
                !output.contains(line),
                "{node}'s key shows in hactl's output"
            );
        }
    }
    assert!(!output.contains("PRIVATE KEY"), "no key in hactl's output");

    // 2. Checked on the hosts and through the VIP, without hactl.
    let keys = lab.ssh_each_ok(&RABBITS, "stat -c '%U %G %a' /etc/rabbitmq/hactl-key.pem");
    assert!(
        keys.iter().all(|k| k.trim() == "rabbitmq rabbitmq 400"),
        "{keys:?}"
    );
    // Nothing listens on 5672; RabbitMQ (beam) listens on 5671 (HAProxy too, on the VIP).
    let listeners = lab.ssh_each_ok(
        &RABBITS,
        "ss -Hltn '( sport = :5672 )'; echo --; ss -Hltnp '( sport = :5671 )' | grep -c beam",
    );
    for (node, out) in RABBITS.iter().zip(&listeners) {
        let rabbit = out.strip_prefix("--\n").map(str::trim);
        assert!(
            rabbit.is_some_and(|n| n != "0"),
            "{node}: RabbitMQ listens on 5671 and nothing on 5672: {out}"
        );
    }
    assert!(closed(&format!("{vip}:5672")), "VIP:5672 is closed");
    for lb in LBS {
        let servers = lab.haproxy_servers(lb);
        for node in RABBITS {
            let key = ("rabbitmq_amqps".to_string(), node.to_string());
            assert_eq!(
                servers.get(&key).map(String::as_str),
                Some("UP"),
                "{lb}: {servers:?}"
            );
        }
    }
    let (ok, _) = s_client(&vip, &ca, "mq.hactl-lab", b"");
    assert!(ok, "the cluster CA verifies VIP:5671 as mq.hactl-lab");
    let other = inventory.with_file_name("other-ca");
    let other_ca = {
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-subj", "/CN=another CA", "-days", "2", "-keyout"])
            .arg(other.with_extension("key"))
            .arg("-out")
            .arg(other.with_extension("pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl req");
        assert!(status.success(), "openssl req made another CA");
        other.with_extension("pem")
    };
    let (ok, _) = s_client(&vip, &other_ca, "mq.hactl-lab", b"");
    assert!(!ok, "another CA does not verify VIP:5671");
    assert!(
        amqp_over_tls(&vip, &ca, "mq.hactl-lab"),
        "RabbitMQ answers the AMQP header over TLS through the VIP"
    );

    // 3. A re-run changes nothing.
    let certs_before = fs::read_to_string(pki.join("node1.pem")).expect("read node1.pem");
    let again = hactl("up (tls, again)", &["up", inv, "--json"]);
    let report = again.expect_code(0).json();
    assert!(changed_steps(&report).is_empty(), "{:?}", actions(&report));
    assert!(!again.stderr().contains("tls: made"), "{}", again.stderr());
    assert_eq!(
        fs::read_to_string(pki.join("node1.pem")).expect("read node1.pem"),
        certs_before
    );

    // 4. A new VIP name: new certificates, nodes restarted one at a time.
    fs::write(&inventory, with_name("amqp.hactl-lab")).expect("write inventory");
    let renamed = hactl("up (tls, new vip_name)", &["up", inv, "--json"]);
    let report = renamed.expect_code(0).json();
    for node in RABBITS {
        assert!(
            renamed
                .stderr()
                .contains(&format!("tls: made a certificate for {node} (its names")),
            "{node}: {}",
            renamed.stderr()
        );
    }
    let restarts: Vec<String> = actions(&report)
        .into_iter()
        .filter(|a| a.contains("restart rabbitmq-server (rolling"))
        .collect();
    assert_eq!(restarts.len(), RABBITS.len(), "{:?}", actions(&report));
    assert!(
        amqp_over_tls(&vip, &ca, "amqp.hactl-lab"),
        "the new name verifies, and RabbitMQ answers over TLS"
    );
    let (ok, _) = s_client(&vip, &ca, "mq.hactl-lab", b"");
    assert!(!ok, "the old name is no longer in the certificates");
}
