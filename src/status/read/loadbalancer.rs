//! Load balancer reads: HAProxy and Keepalived running, Keepalived's state, the VIP, and
//! HAProxy's backends from its admin socket.

use super::{section, sections};
use crate::host::{Host, tail};
use crate::procs::proc_fns;
use crate::render::{HAPROXY_ADMIN_SOCKET, KEEPALIVED_STATE_FILE};
use crate::ssh::Cmd;
use crate::steps::vip;
use serde::Serialize;

/// The HAProxy stats socket is read with `socat` when the host has it, else with the Perl of
/// `perl-base` (Essential on Debian and Ubuntu, so always there). `$1` is the socket.
const PERL_SHOW_STAT: &str = r#"use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Type => SOCK_STREAM) or die "cannot connect to $ARGV[0]: $!\n"; print $s "show stat\n"; print while <$s>;"#;

/// A load balancer: daemons, keepalived's state file, the addresses on the VIP's interface,
/// and HAProxy's `show stat`. `$1` socket, `$2` state file, `$3` interface, `$4` Perl reader.
const LB_SCRIPT: &str = concat!(
    proc_fns!(),
    r#"PATH=/usr/sbin:/usr/bin:/sbin:/bin
if running haproxy; then echo '@@haproxy running'; else echo '@@haproxy stopped'; fi
if running keepalived; then echo '@@keepalived running'; else echo '@@keepalived stopped'; fi
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
rc=$?; echo; echo "@@rc $rc""#
);

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

/// Parses the output of [`LB_SCRIPT`].
pub fn parse_lb_read(stdout: &str, vip: &str) -> LbRead {
    let secs = sections(stdout);
    let mut read = LbRead {
        haproxy_running: section(&secs, "haproxy").is_some_and(|(s, _)| s == "running"),
        keepalived_running: section(&secs, "keepalived").is_some_and(|(s, _)| s == "running"),
        keepalived_state: section(&secs, "state")
            .map(|(_, b)| b.trim().to_string())
            .filter(|s| !s.is_empty()),
        holds_vip: section(&secs, "addr").is_some_and(|(_, b)| vip::lists_address(b, vip)),
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
