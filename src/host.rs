//! A connected host: its node, its SSH connection, its facts, and the few remote operations
//! every step uses.

use crate::inventory::Node;
use crate::procs::proc_fns;
use crate::render::RenderedFile;
use crate::report::Reporter;
use crate::snapshot::{FileRead, Snapshot};
use crate::ssh::{Cmd, Connection, Output, Upload};
use anyhow::{Context, anyhow};
use std::sync::Arc;

/// How services are managed on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitSystem {
    Systemd,
    /// `/usr/sbin/service` and /etc/init.d scripts (containers, hosts without systemd); a
    /// service without a script is run directly.
    SysV,
}

#[derive(Debug, Clone)]
pub struct Facts {
    pub os_id: String,
    pub os_version: String,
    pub init: InitSystem,
    pub hostname: String,
}

#[derive(Clone)]
pub struct Host {
    pub node: Node,
    pub conn: Connection,
    pub reporter: Arc<Reporter>,
    pub facts: Option<Facts>,
    /// Managed files read with the facts, served to their first reads (see `snapshot`).
    pub snapshot: Snapshot,
}

/// Exit status `read_file` uses for "no such file".
const MISSING: u32 = 3;

impl Host {
    /// A connected host; the run's report counts the Erlang VMs its commands start.
    pub fn new(node: Node, conn: Connection, reporter: &Arc<Reporter>) -> Host {
        reporter.count_vm_starts(&node.name, conn.vm_starts());
        Host {
            node,
            conn,
            reporter: reporter.clone(),
            facts: None,
            snapshot: Snapshot::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.node.name
    }

    pub fn facts(&self) -> &Facts {
        self.facts.as_ref().expect("facts are gathered first")
    }

    /// Runs `cmd`; any exit status is returned, not an error.
    pub async fn probe(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        self.reporter.command(self.name(), cmd);
        Ok(self.conn.run(cmd).await?)
    }

    /// Runs `cmd`; a non-zero exit is an error naming the host, the command, the status and
    /// the tail of stderr.
    pub async fn run(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        let out = self.probe(cmd).await?;
        check(self.name(), cmd, out)
    }

    /// Runs `cmd` with `stdin` (for secrets: never on the command line).
    pub async fn run_with_stdin(&self, cmd: &Cmd, stdin: &[u8]) -> anyhow::Result<Output> {
        self.reporter.command(self.name(), cmd);
        let out = self.conn.run_with_stdin(cmd, stdin).await?;
        check(self.name(), cmd, out)
    }

    /// The file's content, or None when it does not exist. A symlink is not followed (an
    /// error): in a directory a service user owns, it could point at any file root can read,
    /// and the content would end up in a diff.
    pub async fn read_file(&self, path: &str) -> anyhow::Result<Option<String>> {
        if let Some(read) = self.snapshot.take(path) {
            return Ok(read.map(|(_, content)| content));
        }
        let cmd = Cmd::sh(
            "if [ -e \"$1\" ] || [ -L \"$1\" ]; then exec dd if=\"$1\" iflag=nofollow status=none; else exit 3; fi",
            [path],
        );
        let out = self.probe(&cmd).await?;
        match out.status {
            0 => Ok(Some(out.stdout)),
            MISSING => Ok(None),
            _ => Err(anyhow!(
                "{}: cannot read {path}: `{cmd}` exited {}: {}",
                self.name(),
                out.status,
                tail(&out.stderr)
            )),
        }
    }

    /// The file's owner, group, mode (octal string) and content, or None when it does not
    /// exist: one round trip. A symlink is refused as in `read_file`.
    pub async fn read_file_and_owner(&self, path: &str) -> anyhow::Result<FileRead> {
        if let Some(read) = self.snapshot.take(path) {
            return Ok(read);
        }
        let cmd = Cmd::sh(
            "if [ -e \"$1\" ] || [ -L \"$1\" ]; then stat -c '%U %G %a' -- \"$1\" && exec dd if=\"$1\" iflag=nofollow status=none; else exit 3; fi",
            [path],
        );
        let out = self.probe(&cmd).await?;
        match out.status {
            0 => {
                let parsed = out.stdout.split_once('\n').and_then(|(meta, content)| {
                    let mut it = meta.split_whitespace().map(str::to_string);
                    let meta = (it.next()?, it.next()?, it.next()?);
                    Some((meta, content.to_string()))
                });
                parsed
                    .map(Some)
                    .ok_or_else(|| anyhow!("{}: unexpected stat output for {path}", self.name()))
            }
            MISSING => Ok(None),
            _ => Err(anyhow!(
                "{}: cannot read {path}: `{cmd}` exited {}: {}",
                self.name(),
                out.status,
                tail(&out.stderr)
            )),
        }
    }

    /// Writes a file atomically with owner, group and mode (see [`Upload`]).
    pub async fn upload(&self, file: &Upload<'_>) -> anyhow::Result<()> {
        self.reporter.command(
            self.name(),
            format_args!(
                "upload {} (mode {:o}, {}:{})",
                file.path, file.mode, file.owner, file.group
            ),
        );
        self.conn
            .upload(file)
            .await
            .with_context(|| format!("{}: cannot write {}", self.name(), file.path))
    }

    /// Puts a rendered file in place.
    pub async fn install(&self, file: &RenderedFile) -> anyhow::Result<()> {
        self.upload(&Upload {
            path: &file.path,
            content: file.content.as_bytes(),
            mode: file.mode,
            owner: &file.owner,
            group: &file.group,
            dir_owner: file.dir_owner,
            check: file.check,
        })
        .await
    }

    /// Whether a process with exactly this name runs on the host.
    pub async fn process_running(&self, name: &str) -> anyhow::Result<bool> {
        let script = concat!(proc_fns!(), r#"running "$1""#);
        let out = self.probe(&Cmd::sh(script, [name])).await?;
        Ok(out.status == 0)
    }

    /// Waits (bounded) until no `name` process runs here.
    pub async fn wait_gone(&self, name: &str) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.process_running(name).await? {
            if std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "{}: `service {name} stop` succeeded but {name} still runs after 30 s",
                    self.name()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Whether the RabbitMQ server VM runs here. Not by the name beam.smp: every
    /// `rabbitmqctl` call runs a short-lived beam.smp too. The `[r]` keeps the pattern from
    /// matching the command line that carries it.
    pub async fn rabbitmq_running(&self) -> anyhow::Result<bool> {
        let script = concat!(proc_fns!(), r#"cmdline_matches "$1""#);
        let pattern = crate::rabbitmq::SERVER_VM_PATTERN;
        let out = self.probe(&Cmd::sh(script, [pattern])).await?;
        Ok(out.status == 0)
    }

    /// The Erlang distribution of the running RabbitMQ server VM (None: not running), read
    /// from its command line: the protocol it was started with, whatever the files say now.
    pub async fn rabbitmq_distribution(&self) -> anyhow::Result<Option<Distribution>> {
        let script = concat!(
            proc_fns!(),
            r#"cmdline_matches "$1" || exit 1; cmdline_matches "$2" && echo tls; exit 0"#
        );
        let server = crate::rabbitmq::SERVER_VM_PATTERN;
        let tls = crate::rabbitmq::SERVER_VM_TLS_DIST_PATTERN;
        let out = self.probe(&Cmd::sh(script, [server, tls])).await?;
        Ok(match (out.status, out.stdout.trim()) {
            (0, "tls") => Some(Distribution::Tls),
            (0, _) => Some(Distribution::Tcp),
            _ => None,
        })
    }

    /// Starts, stops, restarts or reloads a service through the host's init system. Without
    /// systemd or an init script, RabbitMQ is run directly (`rabbitmq-server -detached`, then a
    /// bounded wait until it answers), as on a container-like host. When RabbitMQ fails to
    /// start, the error ends with what its log says: the init system only says that it failed.
    pub async fn service(&self, name: &str, action: &str) -> anyhow::Result<Output> {
        let result = self.init_system(name, action).await;
        match result {
            Err(e) if name == "rabbitmq-server" && matches!(action, "start" | "restart") => {
                match self.rabbitmq_boot_errors().await {
                    Some((path, lines)) => {
                        Err(anyhow!("{e:#}\nfrom {path} on {}:\n{lines}", self.name()))
                    }
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// What the RabbitMQ node's log says about its last boot (see `rabbitmq::boot_log`), or
    /// None when there is no log to read.
    async fn rabbitmq_boot_errors(&self) -> Option<(String, String)> {
        use crate::rabbitmq::boot_log;
        let path = format!(
            "/var/log/rabbitmq/{}.log",
            crate::rabbitmq::node_name(self.name())
        );
        let read = boot_log::READ_LINES.to_string();
        let out = self
            .probe(&Cmd::new("tail").args(["-n", &read, "--", &path]))
            .await
            .ok()?;
        let lines = boot_log::excerpt(&out.stdout);
        (out.status == 0 && !lines.is_empty()).then(|| (path, lines.join("\n")))
    }

    async fn init_system(&self, name: &str, action: &str) -> anyhow::Result<Output> {
        if self.facts().init == InitSystem::Systemd {
            return self.run(&Cmd::new("systemctl").arg(action).arg(name)).await;
        }
        let cmd = Cmd::sh(
            "if [ -x \"/etc/init.d/$1\" ]; then exec service \"$1\" \"$2\"; fi; exit 99",
            [name, action],
        );
        let out = self.probe(&cmd).await?;
        if out.status != NO_INIT_SCRIPT {
            return check(self.name(), &cmd, out);
        }
        if name != "rabbitmq-server" {
            anyhow::bail!(
                "{}: cannot {action} {name}: no systemd and no /etc/init.d/{name}",
                self.name()
            );
        }
        let ctl = |args: &[&str]| crate::rabbitmq::ctl(args.iter().copied());
        if matches!(action, "stop" | "restart") {
            self.run(&ctl(&["stop"])).await?;
        }
        if matches!(action, "start" | "restart") {
            self.run(&Cmd::new("/usr/sbin/rabbitmq-server").arg("-detached"))
                .await?;
            // -detached returns at once; the node answers only once it has booted.
            let deadline = crate::ssh::deadline(
                std::time::Instant::now(),
                self.conn.target().command_timeout,
            );
            loop {
                let out = self
                    .probe(&ctl(&["await_startup", "--timeout", "10"]))
                    .await?;
                if out.status == 0 {
                    return Ok(out);
                }
                if std::time::Instant::now() > deadline {
                    return check(self.name(), &ctl(&["await_startup"]), out);
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
        Ok(Output {
            status: 0,
            stdout: String::new(),
            stderr: String::new(),
        })
    }
}

/// Exit status of the service script when the host has no init script for the service.
const NO_INIT_SCRIPT: u32 = 99;

pub fn check(host: &str, cmd: &Cmd, out: Output) -> anyhow::Result<Output> {
    if out.status == 0 {
        Ok(out)
    } else {
        Err(anyhow!(
            "{host}: `{cmd}` exited {}: {}",
            out.status,
            tail(if out.stderr.trim().is_empty() {
                &out.stdout
            } else {
                &out.stderr
            })
        ))
    }
}

/// The last lines of a command's output, for error messages ("(no output)" when empty).
pub fn tail(text: &str) -> String {
    let t = crate::ssh::tail(text, 12);
    if t.is_empty() {
        "(no output)".into()
    } else {
        t
    }
}

/// How a RabbitMQ node's Erlang distribution talks to its peers and CLI tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    Tcp,
    Tls,
}

impl Distribution {
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::Tcp => "TCP",
            Distribution::Tls => "TLS",
        }
    }
}
