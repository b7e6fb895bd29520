//! AMQP over TLS (issue #17), on `lab up 5` with the lab's inventory (node1..node3 RabbitMQ,
//! node4 and node5 load balancers) and a `tls:` section that turns plain AMQP off:
//!
//! 1. a dry run writes no certificate; the cold `up` is exactly its plan; neither its output
//!    (`-v`) nor any argv on the machine and the lab's hosts (the exec audit) carries key
//!    material or a secret;
//! 2. checked without hactl: every node's key is `rabbitmq:rabbitmq 0400`, nothing listens on
//!    5672, VIP:5672 is closed; `openssl s_client` against VIP:5671 verifies the chain and the
//!    VIP's DNS name with the cluster CA, and fails without it; through the VIP, over TLS,
//!    RabbitMQ answers the AMQP 0-9-1 header; the management API answers over HTTPS through
//!    VIP:15671 with the CA and refuses another, VIP:15672 (plain HTTP) is closed;
//! 3. a re-run changes nothing and makes no certificate;
//! 4. a new `vip_name` makes every node certificate again; `up` has the running nodes read
//!    them again without a restart (same beam.smp), every node and the management API serve
//!    the new name, and the old one no longer verifies;
//! 5. a lapin client that trusts only the cluster CA publishes and consumes with confirms
//!    through VIP:5671; one that trusts another CA is refused;
//! 6. the operator's own certificates (a new root, an intermediate) replace hactl's under the
//!    confirmed-publish load client, the bundle trusting both roots meanwhile, with a
//!    `net_ticktime` change that needs a restart: the nodes restart one at a time, nothing confirmed is lost, the outage is printed, no argv holds a
//!    key (the exec audit again); the new root
//!    alone then verifies the VIP (the nodes send the intermediate);
//! 7. `status` shows each node's certificate (issuer, names, days left) and reports an
//!    expired one as a problem (exit 1);
//! 8. inter-node TLS turned on in the running cluster (see `inter_node`).
//!
//! Needs root; without it the test skips loudly (see common::lab).

mod common;
#[path = "tls/inter_node.rs"]
mod inter_node;

use common::amqp::{self, Target};
use common::exec_audit::{ExecAudit, lab_secrets};
use common::lab::{Lab, wait_until};
use common::report::{Run, actions, assert_dry_run_was_the_plan, changed_steps};
use common::traffic::{Settings, Traffic};
use lapin::ConnectionProperties;
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

/// Runs `cmd` with `input` on its standard input; its whole output.
fn output_with_stdin(mut cmd: Command, input: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write to stdin");
    drop(stdin);
    child.wait_with_output().expect("wait for the command")
}

/// `openssl s_client` to `vip:5671` trusting only `ca` (no system store), checking `name`;
/// `stdin` is sent after the handshake. Returns (exit status, stdout).
fn s_client(vip: &str, ca: &Path, name: &str, stdin: &[u8]) -> (bool, String) {
    let mut openssl = Command::new("timeout");
    openssl
        .args(["20", "openssl", "s_client", "-quiet", "-ign_eof"])
        .args(["-connect", &format!("{vip}:5671"), "-servername", name])
        .args(["-verify_return_error", "-verify_hostname", name])
        .args(["-no-CApath", "-no-CAstore", "-CAfile"])
        .arg(ca);
    let out = output_with_stdin(openssl, stdin);
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

/// `curl` GET of `https://name:15671{path}` at `vip`, trusting only `ca`, as `app` (the
/// credentials on stdin, not in argv). Returns (HTTP code, or curl's exit when it failed; body).
fn https_get(vip: &str, ca: &Path, name: &str, password: &str, path: &str) -> (String, String) {
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--max-time", "10", "-K", "-", "-w", "\n%{http_code}"])
        .args(["--resolve", &format!("{name}:15671:{vip}"), "--cacert"])
        .arg(ca)
        .arg(format!("https://{name}:15671{path}"));
    let config = format!("user = \"app:{password}\"\n");
    let out = output_with_stdin(curl, config.as_bytes());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let code = match out.status.success() {
        true => code.to_string(),
        false => format!("curl {}", out.status),
    };
    eprintln!(
        "curl https://{name}:15671{path} with {}: {code} ({})",
        ca.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    (code, body.to_string())
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
    let audit = ExecAudit::start(Some(&lab));
    let cold = hactl("up (tls)", &["up", inv, "--json", "-v"]);
    let recording = audit.finish(Some(&lab));
    let report = cold.expect_code(0).json();
    let mut secrets = lab_secrets(&lab);
    secrets.extend(key_lines(&pki));
    recording.assert_clean(&secrets, "tls cold up: no key or secret in any argv");
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
    assert!(
        closed(&format!("{vip}:15672")),
        "VIP:15672 (plain HTTP) is closed"
    );
    for lb in LBS {
        let servers = lab.haproxy_servers(lb);
        for node in RABBITS {
            for proxy in ["rabbitmq_amqps", "rabbitmq_management_https"] {
                let key = (proxy.to_string(), node.to_string());
                assert_eq!(
                    servers.get(&key).map(String::as_str),
                    Some("UP"),
                    "{lb}: {servers:?}"
                );
            }
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

    // The management API over HTTPS through the VIP, as mq.hactl-lab, trusting only the CA.
    let password = fs::read_to_string(lab.state_dir().join("secrets/app-password"))
        .expect("read the app password");
    let password = password.trim_end();
    let (code, body) = https_get(&vip, &ca, "mq.hactl-lab", password, "/api/overview");
    assert_eq!(code, "200", "GET /api/overview through VIP:15671: {body}");
    assert!(body.contains("\"rabbitmq_version\""), "{body}");
    let (code, _) = https_get(&vip, &other_ca, "mq.hactl-lab", password, "/api/overview");
    assert_ne!(code, "200", "another CA does not verify VIP:15671");

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

    // 4. A new VIP name: new certificates, read again by the running nodes (no restart).
    fs::write(&inventory, with_name("amqp.hactl-lab")).expect("write inventory");
    let beams = "pgrep -o -x beam.smp";
    let pids = lab.ssh_each_ok(&RABBITS, beams);
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
    let all = actions(&report);
    let count = |what: &str| all.iter().filter(|a| a.contains(what)).count();
    assert_eq!(count("reload the TLS files"), RABBITS.len(), "{all:?}");
    assert_eq!(count("restart rabbitmq-server"), 0, "{all:?}");
    assert_eq!(lab.ssh_each_ok(&RABBITS, beams), pids, "no node restarted");
    for node in RABBITS {
        let (ok, _) = s_client(&lab.address(node), &ca, "amqp.hactl-lab", b"");
        assert!(ok, "{node} serves the certificate with the new name");
    }
    let (code, _) = https_get(&vip, &ca, "amqp.hactl-lab", password, "/api/overview");
    assert_eq!(code, "200", "the management API serves the new name too");
    eprintln!(
        "new vip_name: 3 certificates read again without a restart in {:.1}s",
        renamed.took.as_secs_f64()
    );
    assert!(
        amqp_over_tls(&vip, &ca, "amqp.hactl-lab"),
        "the new name verifies, and RabbitMQ answers over TLS"
    );
    let (ok, _) = s_client(&vip, &ca, "mq.hactl-lab", b"");
    assert!(!ok, "the old name is no longer in the certificates");

    // 5. A client that trusts only the cluster CA publishes and consumes with confirms through
    //    VIP:5671 (rustls checks the VIP's address in the certificate); one that trusts
    //    another CA is refused.
    let ca_pem = fs::read_to_string(&ca).expect("read ca.pem");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let target = Target::new(&vip, 5671, "app", password).with_ca(&ca_pem);
    let (confirmed, received) = rt
        .block_on(amqp::round_trip(&target, "ha.tls", "tls", 100))
        .unwrap_or_else(|e| panic!("round trip via {target}: {e:#}"));
    assert_eq!((confirmed, received), (100, 100), "via {target}");
    eprintln!("{target}, trusting only the cluster CA: 100 confirmed, 100 consumed");
    let other_pem = fs::read_to_string(&other_ca).expect("read the other CA");
    let stranger = Target::new(&vip, 5671, "app", password).with_ca(&other_pem);
    let refused = rt.block_on(amqp::bounded(
        "connect trusting another CA",
        amqp::OP_TIMEOUT,
        stranger.connect(ConnectionProperties::default()),
    ));
    let err = match refused {
        Ok(_) => panic!("a client trusting another CA connected to {vip}:5671"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("certificate"), "{err}");
    eprintln!("{stranger}, trusting another CA: refused: {err}");

    // 6. Rotation under load: the operator's own certificates, from a new root through an
    //    intermediate, with a bundle that trusts the old CA and the new root meanwhile, and a
    //    net_ticktime change. The nodes restart one at a time while a client publishes with
    //    confirms: nothing lost.
    let own = Own::make(&lab, &vip, "amqp.hactl-lab");
    let bundle = format!("{}{ca_pem}", own.root);
    let dir = inventory.with_file_name("brought");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).expect("create brought/");
    fs::write(dir.join("bundle.pem"), &bundle).expect("write the bundle");
    fs::write(dir.join("root.pem"), &own.root).expect("write the root");
    let mut section = String::from("tls:\n  brought:\n    ca: brought/bundle.pem\n    nodes:\n");
    for (node, cert, key) in &own.nodes {
        fs::write(dir.join(format!("{node}.pem")), cert).expect("write a certificate");
        write_private(&dir.join(format!("{node}-key.pem")), key);
        section += &format!(
            "      {node}: {{cert: brought/{node}.pem, key: {{file: brought/{node}-key.pem}}}}\n"
        );
    }
    section += "  amqp_plain: false\n  vip_name: amqp.hactl-lab\n";
    // With a setting that needs a restart: the rolling path under load, over TLS.
    let ticktime = base.replacen("  seed: node1\n", "  seed: node1\n  net_ticktime: 30\n", 1);
    assert_ne!(ticktime, base, "no seed line to add net_ticktime after");
    fs::write(&inventory, format!("{ticktime}\n{section}")).expect("write inventory");
    hactl("validate (brought)", &["validate", inv]).expect_code(0);
    let mut settings = Settings::new(&vip, 5671, "app", password, "ha.tls-rotation", "rotation");
    settings.ca = Some(bundle.clone());
    settings.max_duration = Duration::from_secs(300);
    let traffic = Traffic::start(settings).expect("start the TLS load client");
    wait_until(Duration::from_secs(30), "TLS traffic flows", || {
        traffic.confirmed() >= 50
    });
    traffic.mark("up: rotation to brought certificates");
    let audit = ExecAudit::start(Some(&lab));
    let rotated = hactl("up (tls, brought)", &["up", inv, "--json"]);
    let recording = audit.finish(Some(&lab));
    let report = rotated.expect_code(0).json();
    let mut secrets = lab_secrets(&lab);
    secrets.extend(key_lines(&dir));
    recording.assert_clean(&secrets, "tls rotation: no key or secret in any argv");
    traffic.mark("up done");
    let done = std::time::Instant::now();
    let restarts = actions(&report)
        .into_iter()
        .filter(|a| a.contains("restart rabbitmq-server (rolling"))
        .count();
    assert_eq!(restarts, RABBITS.len(), "{:?}", actions(&report));
    wait_until(
        Duration::from_secs(60),
        "TLS traffic flows after the rotation",
        || traffic.confirmed_after(done) >= 50,
    );
    let load = traffic.finish(Duration::from_secs(90));
    eprintln!("{load}");
    load.check().unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "rotation under load: {} restarts in {:.1}s; {}; longest publisher outage {:.2}s",
        restarts,
        rotated.took.as_secs_f64(),
        load.line(),
        load.longest_publisher_outage()
            .unwrap_or_default()
            .as_secs_f64()
    );
    // The nodes send the intermediate: the new root alone verifies; the old CA no longer does.
    let (ok, _) = s_client(&vip, &dir.join("root.pem"), "amqp.hactl-lab", b"");
    assert!(
        ok,
        "the new root alone verifies VIP:5671 through the intermediate"
    );
    let (ok, _) = s_client(&vip, &ca, "amqp.hactl-lab", b"");
    assert!(
        !ok,
        "the old CA no longer verifies the rotated certificates"
    );

    // 7. `status` shows every node's certificate; an expired one is a problem (exit 1). The
    //    expired file is put in place of node3's and the original put back: nothing restarts.
    let healthy = hactl("status (tls)", &["status", inv, "--json"]);
    let report = healthy.expect_code(0).json()["status"].clone();
    for (i, node) in RABBITS.iter().enumerate() {
        let cert = &report["hosts"][i]["rabbitmq"]["certificate"];
        assert_eq!(report["hosts"][i]["name"], *node, "{report}");
        assert!(
            cert["days_left"].as_i64().is_some_and(|d| d > 300),
            "{node}: {cert}"
        );
        assert_eq!(cert["issuer"], "CN=operator intermediate", "{node}: {cert}");
        assert!(
            cert["names"]
                .as_array()
                .is_some_and(|n| n.contains(&(*node).into())),
            "{node}: {cert}"
        );
    }
    let expired = own.expired("node3");
    let keep = "/etc/rabbitmq/hactl-cert.pem.test-keep";
    lab.ssh_ok(
        "node3",
        &format!("cp -p /etc/rabbitmq/hactl-cert.pem {keep}"),
    );
    lab.ssh_ok(
        "node3",
        &format!("printf '%s' '{expired}' > /etc/rabbitmq/hactl-cert.pem"),
    );
    let degraded = hactl(
        "status (an expired certificate)",
        &["status", inv, "--json"],
    );
    lab.ssh_ok(
        "node3",
        &format!("mv -f {keep} /etc/rabbitmq/hactl-cert.pem"),
    );
    let report = degraded.expect_code(1).json()["status"].clone();
    let problems: Vec<(String, String)> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| (p["host"].to_string(), p["kind"].to_string()))
        .collect();
    assert_eq!(
        problems,
        [(
            "\"node3\"".to_string(),
            "\"certificate_expired\"".to_string()
        )],
        "{report}"
    );
    eprintln!("status: {}", report["problems"][0]["message"]);

    // 8. Erlang distribution over TLS.
    inter_node::turn_on(&lab, &inventory);
}

/// The operator's own PKI for the lab: a root, an intermediate it signs, and per RabbitMQ node
/// a certificate (then the intermediate) with the names hactl wants, and its key.
struct Own {
    root: String,
    nodes: Vec<(String, String, String)>,
    /// Signs `expired`.
    mid: (String, rcgen::KeyPair),
}

impl Own {
    fn make(lab: &Lab, vip: &str, vip_name: &str) -> Own {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca = |cn: &str| {
            let mut p = CertificateParams::default();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p
        };
        let root_key = KeyPair::generate().expect("root key");
        let root = ca("operator root").self_signed(&root_key).expect("root");
        let root_issuer = Issuer::from_ca_cert_pem(&root.pem(), &root_key).expect("issuer");
        let mid_key = KeyPair::generate().expect("intermediate key");
        let mid = ca("operator intermediate")
            .signed_by(&mid_key, &root_issuer)
            .expect("intermediate");
        let mid_issuer = Issuer::from_ca_cert_pem(&mid.pem(), &mid_key).expect("issuer");
        let nodes = RABBITS
            .iter()
            .map(|node| {
                let names = vec![
                    node.to_string(),
                    lab.address(node),
                    vip.to_string(),
                    vip_name.to_string(),
                ];
                let key = KeyPair::generate().expect("node key");
                let mut p = CertificateParams::new(names).expect("names");
                p.distinguished_name.push(DnType::CommonName, *node);
                let cert = p.signed_by(&key, &mid_issuer).expect("node certificate");
                let chain = format!("{}{}", cert.pem(), mid.pem());
                (node.to_string(), chain, key.serialize_pem())
            })
            .collect();
        Own {
            root: root.pem(),
            nodes,
            mid: (mid.pem(), mid_key),
        }
    }

    /// A certificate for `node` that expired yesterday.
    fn expired(&self, node: &str) -> String {
        use rcgen::{CertificateParams, Issuer, KeyPair};
        let now = time::OffsetDateTime::now_utc();
        let issuer = Issuer::from_ca_cert_pem(&self.mid.0, &self.mid.1).expect("issuer");
        let mut p = CertificateParams::new(vec![node.to_string()]).expect("names");
        p.not_before = now - time::Duration::days(30);
        p.not_after = now - time::Duration::days(1);
        let key = KeyPair::generate().expect("key");
        p.signed_by(&key, &issuer).expect("certificate").pem()
    }
}

/// The body lines of every `NODE-key.pem` in `dir`, as secrets to look for in argv.
fn key_lines(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for node in RABBITS {
        let key = fs::read_to_string(dir.join(format!("{node}-key.pem"))).expect("read a key");
        for (i, line) in key.lines().filter(|l| !l.starts_with("-----")).enumerate() {
            out.push((format!("{node}'s key, line {}", i + 1), line.to_string()));
        }
    }
    assert!(out.len() >= RABBITS.len() * 2, "{} key lines", out.len());
    out
}

/// A key file, private from its first byte.
fn write_private(path: &Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create a key file");
    f.write_all(text.as_bytes()).expect("write a key file");
}
