//! hactl's file writes on a real lab host, attacked from inside: the `rabbitmq` account owns
//! the directory that holds the Erlang cookie, and races every `up` to turn hactl's temporary
//! file into a symlink to a root-owned file. Then directories an upload must refuse: one owned
//! by an unexpected user, and a world-writable one. One host (RabbitMQ + load balancer) serves
//! every check. Needs root; skipped loudly otherwise (see common::lab).

mod common;

use common::lab::{Lab, describe, wait_until};
use common::report::Run;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HACTL: &str = env!("CARGO_BIN_EXE_hactl");
const NODE: &str = "node1";
const COOKIE: &str = "/var/lib/rabbitmq/.erlang.cookie";
/// A root-owned file the racer points hactl's temporary files at (as it would /etc/shadow). It
/// holds the cookie's value, so a caught race (which leaves the cookie a symlink to it) makes
/// the next `up` only rewrite the cookie, not restart RabbitMQ: that keeps 50 runs quick.
const VICTIM: &str = "/etc/hactl-victim";
const REWRITES: usize = 50;

/// The racer, run as `rabbitmq`: every regular file that appears in DIR (other than the cookie
/// itself) is replaced by a symlink to VICTIM, until STOP exists or LIMIT seconds pass; then the
/// number of swaps goes to COUNT.
const RACER: &str = r#"
my ($dir, $victim, $stop, $count, $limit) = @ARGV;
my ($n, $end) = (0, time + $limit);
while (time < $end && !-e $stop) {
    opendir(my $d, $dir) or next;
    for my $e (readdir $d) {
        next if $e eq '.' || $e eq '..' || $e eq '.erlang.cookie';
        my $p = "$dir/$e";
        next if -l $p || !-f _;
        $n++ if unlink($p) && symlink($victim, $p);
    }
    closedir $d;
    select(undef, undef, undef, 0.0002);    # leave the host's CPU to hactl's helper
}
open(my $c, '>', "$count.new") or die; print $c "$n\n"; close $c; rename "$count.new", $count;
"#;

fn inventory(lab: &Lab) -> PathBuf {
    let state = lab.state_dir().display().to_string();
    let subnet = lab.subnet();
    let text = format!(
        "cluster:\n  name: upload-race\n\
         ssh:\n  identity_file: {state}/id_ed25519\n  known_hosts: {state}/known_hosts\n\
         cookie:\n  file: {state}/secrets/cookie\n\
         rabbitmq:\n  seed: {NODE}\n\
         loadbalancer:\n  vip: {subnet}.100/24\n  interface: eth0\n  virtual_router_id: 52\n\
         \x20 auth_password:\n    file: {state}/secrets/vrrp-password\n\
         \x20 stats:\n    user: stats\n    password:\n      file: {state}/secrets/stats-password\n\
         \x20 haproxy_check: script\n\
         nodes:\n  - name: {NODE}\n    address: {}\n    roles: [rabbitmq, loadbalancer]\n    priority: 150\n",
        lab.address(NODE)
    );
    let path = lab.state_dir().join("inventories/uploads.yaml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn up(inventory: &PathBuf, label: &str) -> Run {
    up_with(inventory, label, &[])
}

fn up_with(inventory: &PathBuf, label: &str, flags: &[&str]) -> Run {
    let started = Instant::now();
    let out = Command::new(HACTL)
        .arg("up")
        .arg(inventory)
        .args(flags)
        .env_remove("HACTL_INVENTORY")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {HACTL}: {e}"));
    Run {
        label: label.to_string(),
        out,
        took: started.elapsed(),
    }
}

/// `path -> "owner group mode"` of every file under /etc, /root and /var/lib/rabbitmq on the
/// host, except the cookie and hactl's temporary files.
fn ownership(lab: &Lab) -> BTreeMap<String, String> {
    let out = lab.ssh_ok(
        NODE,
        "find /etc /root /var/lib/rabbitmq -xdev \\( -path /var/lib/rabbitmq/.erlang.cookie \
         -o -name '.*.hactl-*' \\) -prune -o -printf '%p\\t%u %g %m\\n'",
    );
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect()
}

#[test]
fn uploads_resist_a_racing_rabbitmq_user_and_refuse_unsafe_directories() {
    let Some(lab) = Lab::up(1) else { return };
    let inv = inventory(&lab);
    up(&inv, "cold up").expect_code(0);

    lab.ssh_ok(
        NODE,
        &format!("cp {COOKIE} {VICTIM} && chown root:root {VICTIM} && chmod 640 {VICTIM}"),
    );
    let cookie = std::fs::read_to_string(lab.state_dir().join("secrets/cookie")).unwrap();
    let cookie = cookie.trim_end();
    let before = ownership(&lab);
    assert!(
        before.contains_key(VICTIM) && before.len() > 100,
        "{} files",
        before.len()
    );

    // The racer, as rabbitmq (the owner of the cookie's directory).
    lab.ssh_ok(
        NODE,
        &format!("cat > /tmp/racer.pl <<'EOF'\n{RACER}\nEOF\nchmod 644 /tmp/racer.pl"),
    );
    let pid = lab
        .ssh_ok(
            NODE,
            &format!(
                "setpriv --reuid=rabbitmq --regid=rabbitmq --clear-groups -- perl /tmp/racer.pl \
                 /var/lib/rabbitmq {VICTIM} /tmp/racer.stop /tmp/racer.count 900 \
                 </dev/null >/tmp/racer.log 2>&1 & echo $!"
            ),
        )
        .trim()
        .to_string();
    assert!(
        !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()),
        "{pid:?}"
    );

    let started = Instant::now();
    let (mut landed, mut caught) = (0, 0);
    for i in 0..REWRITES {
        // A cookie of the wrong mode makes `up` write it again (a symlink left by a caught
        // race does too). The attacker could do the chmod itself.
        lab.ssh_ok(
            NODE,
            &format!(
                "[ -L {COOKIE} ] || setpriv --reuid=rabbitmq --regid=rabbitmq --clear-groups -- \
                 chmod 600 {COOKIE}"
            ),
        );
        let run = up(&inv, &format!("up {i} under the racer"));
        eprintln!(
            "up {i}: exit {:?} in {:.1}s",
            run.code(),
            run.took.as_secs_f64()
        );
        assert_eq!(
            lab.ssh_ok(NODE, &format!("stat -c '%U %G %a' {VICTIM}")),
            "root root 640\n",
            "up {i} under the racer changed {VICTIM}"
        );
        if run.code() == Some(0) {
            landed += 1;
            continue;
        }
        let err = run.stderr();
        assert!(
            run.code() == Some(1)
                && err.contains(NODE)
                && err.contains(COOKIE)
                && err.contains("by another user"),
            "up {i} failed for another reason than a caught race:\n{}",
            describe(&run.out)
        );
        caught += 1;
    }
    lab.ssh_ok(NODE, "touch /tmp/racer.stop");
    wait_until(Duration::from_secs(15), "the racer reports", || {
        lab.ssh(NODE, "test -e /tmp/racer.count").status.success()
    });
    lab.ssh(NODE, &format!("kill {pid} 2>/dev/null"));
    let swaps: usize = lab
        .ssh_ok(NODE, "cat /tmp/racer.count")
        .trim()
        .parse()
        .unwrap();
    eprintln!(
        "FIGURE race: {REWRITES} ups in {:.1}s: {landed} wrote the cookie, {caught} caught the \
         racer; the racer swapped {swaps} temporary files",
        started.elapsed().as_secs_f64()
    );
    assert!(
        swaps > 0,
        "the racer never saw a temporary file: the test proved nothing"
    );

    let after = ownership(&lab);
    let changed: Vec<_> = before
        .iter()
        .filter_map(|(p, m)| after.get(p).filter(|a| *a != m).map(|a| (p, m, a)))
        .collect();
    assert!(
        changed.is_empty(),
        "owner or mode changed under the racer: {changed:?}"
    );
    assert_eq!(
        lab.ssh_ok(NODE, &format!("cat {VICTIM}")).trim_end(),
        cookie
    );

    // Without the racer, one `up` puts the cookie right again.
    up(&inv, "up after the race").expect_code(0);
    assert_eq!(
        lab.ssh_ok(NODE, &format!("stat -c '%F %U %G %a' {COOKIE}")),
        "regular file rabbitmq rabbitmq 400\n"
    );
    assert_eq!(
        lab.ssh_ok(NODE, &format!("cat {COOKIE}")).trim_end(),
        cookie
    );

    // Directories an upload refuses: the run fails naming the host and the directory, and the
    // file there is left as it was.
    for (dir, file, spoil, restore, why) in [
        (
            "/etc/haproxy",
            "/etc/haproxy/haproxy.cfg",
            "chown nobody /etc/haproxy",
            "chown root /etc/haproxy",
            "/etc/haproxy is owned by nobody, expected root",
        ),
        (
            "/etc/keepalived",
            "/etc/keepalived/keepalived.conf",
            "chmod 1777 /etc/keepalived",
            "chmod 755 /etc/keepalived",
            "/etc/keepalived is world-writable",
        ),
    ] {
        lab.ssh_ok(NODE, &format!("echo '# drift' >> {file} && {spoil}"));
        let run = up(&inv, &format!("up with {dir} unsafe"));
        run.expect_code(1);
        let err = run.stderr();
        assert!(
            err.contains(NODE) && err.contains(why),
            "{}",
            describe(&run.out)
        );
        assert_eq!(
            lab.ssh_ok(NODE, &format!("tail -n 1 {file}")),
            "# drift\n",
            "{file} was replaced"
        );
        assert_eq!(
            lab.ssh_ok(NODE, &format!("ls -A {dir} | grep -c hactl- || true"))
                .trim(),
            "0",
            "temporary files left in {dir}"
        );
        lab.ssh_ok(NODE, restore);
    }

    // A config the rabbitmq account (owner of /etc/rabbitmq on Debian) turned into a symlink is
    // not read through: root would show the target's content in a diff.
    lab.ssh_ok(
        NODE,
        "printf 'TOP-SECRET-MARKER\\n' > /etc/hactl-secret && chmod 600 /etc/hactl-secret && \
         mv /etc/rabbitmq/rabbitmq.conf /etc/rabbitmq/rabbitmq.conf.keep && \
         setpriv --reuid=rabbitmq --regid=rabbitmq --clear-groups -- \
         ln -s /etc/hactl-secret /etc/rabbitmq/rabbitmq.conf",
    );
    let run = up_with(&inv, "dry run with a symlinked config", &["--dry-run"]);
    run.expect_code(1);
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(!all.contains("TOP-SECRET-MARKER"), "{}", describe(&run.out));
    assert!(
        all.contains(NODE)
            && all.contains("/etc/rabbitmq/rabbitmq.conf")
            && all.contains("symbolic links"),
        "{}",
        describe(&run.out)
    );
    lab.ssh_ok(
        NODE,
        "rm /etc/rabbitmq/rabbitmq.conf && mv /etc/rabbitmq/rabbitmq.conf.keep /etc/rabbitmq/rabbitmq.conf",
    );
    // The last run also keeps a dated log of every step (--log-file).
    let log = lab.state_dir().join("uploads-run.log");
    let _ = std::fs::remove_file(&log);
    up_with(
        &inv,
        "up after the refusals",
        &["--log-file", log.to_str().unwrap()],
    )
    .expect_code(0);
    let logged = std::fs::read_to_string(&log).unwrap();
    for expected in [
        "node1 facts: started",
        "node1 cookie: ok",
        "node1 keepalived: changed: update /etc/keepalived/keepalived.conf",
        "hactl up: ok",
    ] {
        assert!(
            logged.lines().any(|l| l.get(25..) == Some(expected)
                || l.get(25..).is_some_and(|r| r.starts_with(expected))),
            "the log has `{expected}`:\n{logged}"
        );
    }
    assert!(
        logged
            .lines()
            .all(|l| l.len() > 25 && &l[10..11] == "T" && &l[23..25] == "Z "),
        "every log line starts with an ISO-8601 UTC date:\n{logged}"
    );
    assert_eq!(
        lab.ssh_ok(
            NODE,
            "grep -c '# drift' /etc/haproxy/haproxy.cfg /etc/keepalived/keepalived.conf || true"
        ),
        "/etc/haproxy/haproxy.cfg:0\n/etc/keepalived/keepalived.conf:0\n"
    );
}
