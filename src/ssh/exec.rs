//! Running commands and uploading files over an open [`Connection`].

use super::quote::KILL_AFTER_SECS;
use super::session::{Connection, secs};
use super::sudo::Sudo;
use super::{Cmd, Output, SshError};
use russh::{ChannelMsg, ChannelReadHalf, Sig};
use std::time::Duration;
use tokio::time::{Instant, timeout_at};

/// How long a timed-out channel may keep its slot while the server winds the command down.
const DRAIN_AFTER_TIMEOUT: Duration = Duration::from_secs(30);

/// How much longer than the command timeout we wait for the host's `timeout` to report.
const CLIENT_GRACE: Duration = Duration::from_secs(KILL_AFTER_SECS + 1);

/// `timeout`'s exit status when it stopped the command.
const TIMEOUT_STATUS: u32 = 124;

impl Connection {
    /// Runs `cmd` with standard input closed (EOF is sent at once: `rabbitmqctl` reads stdin),
    /// bounded by the target's command timeout. A non-zero exit is not an error here: look at
    /// `status`, or use [`Output::check`] / [`Connection::run_checked`].
    pub async fn run(&self, cmd: &Cmd) -> Result<Output, SshError> {
        self.exec(cmd, None).await
    }

    /// Like [`Connection::run`], with `stdin` fed to the command, then EOF. The way to hand a
    /// secret to a remote command.
    pub async fn run_with_stdin(&self, cmd: &Cmd, stdin: &[u8]) -> Result<Output, SshError> {
        self.exec(cmd, Some(stdin)).await
    }

    /// [`Connection::run`], and a non-zero exit becomes [`SshError::Command`].
    pub async fn run_checked(&self, cmd: &Cmd) -> Result<Output, SshError> {
        let out = self.run(cmd).await?;
        out.check(&self.target().host, cmd)?;
        Ok(out)
    }

    pub(super) async fn exec(&self, cmd: &Cmd, stdin: Option<&[u8]>) -> Result<Output, SshError> {
        self.exec_as(self.inner.sudo.get(), cmd, stdin).await
    }

    /// Runs `cmd` through `sudo` (or as it is), the password line (if any) before `stdin`.
    pub(super) async fn exec_as(
        &self,
        sudo: Option<&Sudo>,
        cmd: &Cmd,
        stdin: Option<&[u8]>,
    ) -> Result<Output, SshError> {
        let target = self.target();
        let stdin = match (sudo.and_then(Sudo::stdin_head), stdin) {
            (Some(mut head), rest) => {
                head.extend_from_slice(rest.unwrap_or_default());
                Some(head)
            }
            (None, rest) => rest.map(<[u8]>::to_vec),
        };
        let channel_err = |reason: String| SshError::Channel {
            host: target.host.clone(),
            reason,
        };
        let timed_out = || SshError::Timeout {
            host: target.host.clone(),
            what: format!(
                "command did not finish within {} s: {cmd}",
                secs(target.command_timeout)
            ),
        };

        // Waiting for a free channel slot doesn't count against the command's own time.
        let permit = self.channel_slot().await?;
        let started = Instant::now();
        // The host's `timeout` stops the command at `command_timeout`; our own deadline comes a
        // little later so its exit (124) normally arrives first, and covers a host that hangs.
        let deadline = Instant::from_std(super::deadline(
            started.into_std(),
            target.command_timeout.saturating_add(CLIENT_GRACE),
        ));

        let channel = match timeout_at(deadline, self.inner.handle.channel_open_session()).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(e)) => {
                return Err(channel_err(format!(
                    "cannot open a session channel{}: {e}",
                    if self.is_closed() {
                        " (connection lost)"
                    } else {
                        ""
                    }
                )));
            }
            Ok(Ok(c)) => c,
        };
        let (mut reader, writer) = channel.split();
        let line = cmd.remote_line(sudo, Some(target.command_timeout));

        let work = async {
            writer
                .exec(true, line.as_bytes())
                .await
                .map_err(|e| format!("cannot start the command: {e}"))?;
            self.count_vms(cmd);
            let feed = async {
                if let Some(data) = &stdin {
                    writer.data_bytes(data.clone()).await?;
                }
                writer.eof().await
            };
            let collect = collect(&mut reader);
            tokio::pin!(feed, collect);
            let mut fed = false;
            loop {
                tokio::select! {
                    // A command may exit without reading its input; then the feed just stops.
                    _ = &mut feed, if !fed => fed = true,
                    result = &mut collect => break result,
                }
            }
        };

        match timeout_at(deadline, work).await {
            Ok(Ok(raw)) => {
                let out = raw.into_output();
                if out.status == TIMEOUT_STATUS && started.elapsed() >= target.command_timeout {
                    return Err(timed_out());
                }
                Ok(out)
            }
            Ok(Err(reason)) => {
                let _ = writer.close().await;
                Err(channel_err(format!(
                    "{reason}{} (command: {cmd})",
                    if self.is_closed() {
                        " (connection lost)"
                    } else {
                        ""
                    }
                )))
            }
            Err(_) => {
                // Ask the remote side to stop the command, close our end, and keep the channel
                // slot until the server has let go of the session (sshd counts it until then).
                let _ = writer.signal(Sig::TERM).await;
                let _ = writer.eof().await;
                let _ = writer.close().await;
                tokio::spawn(drain(reader, permit));
                Err(timed_out())
            }
        }
    }
}

async fn drain(mut reader: ChannelReadHalf, permit: tokio::sync::OwnedSemaphorePermit) {
    let _ = tokio::time::timeout(DRAIN_AFTER_TIMEOUT, async {
        while reader.wait().await.is_some() {}
    })
    .await;
    drop(permit);
}

/// What came back on a channel.
struct Raw {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<u32>,
    signal: Option<(String, bool, String)>,
}

impl Raw {
    fn into_output(self) -> Output {
        let mut stderr = String::from_utf8_lossy(&self.stderr).into_owned();
        let status = match (self.status, self.signal) {
            (Some(s), _) => s,
            (None, Some((name, core, message))) => {
                if !stderr.is_empty() && !stderr.ends_with('\n') {
                    stderr.push('\n');
                }
                stderr.push_str(&format!(
                    "killed by signal {name}{}{}{}\n",
                    if core { " (core dumped)" } else { "" },
                    if message.is_empty() { "" } else { ": " },
                    message
                ));
                signal_number(&name).map_or(255, |n| 128 + n)
            }
            (None, None) => unreachable!("collect() returns Raw only with a status or a signal"),
        };
        Output {
            status,
            stdout: String::from_utf8_lossy(&self.stdout).into_owned(),
            stderr,
        }
    }
}

/// Reads a channel to its end. ExitStatus may come before the last data, so this drains
/// `wait()` until it returns `None`.
async fn collect(reader: &mut ChannelReadHalf) -> Result<Raw, String> {
    let mut raw = Raw {
        stdout: Vec::new(),
        stderr: Vec::new(),
        status: None,
        signal: None,
    };
    while let Some(msg) = reader.wait().await {
        match msg {
            ChannelMsg::Data { data } => raw.stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => raw.stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => raw.status = Some(exit_status),
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                ..
            } => raw.signal = Some((signal_name_of(&signal_name), core_dumped, error_message)),
            ChannelMsg::Failure => return Err("the server refused to run the command".into()),
            _ => {}
        }
    }
    if raw.status.is_none() && raw.signal.is_none() {
        return Err("the channel closed without an exit status".into());
    }
    Ok(raw)
}

fn signal_name_of(sig: &Sig) -> String {
    match sig {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(s) => s.as_str(),
    }
    .to_string()
}

fn signal_number(name: &str) -> Option<u32> {
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => return None,
    })
}

/// A remote command kept running for as long as this value lives (its stdin stays open).
/// Dropping it closes the channel: the command sees EOF, and sshd ends the session.
pub struct Held {
    writer: russh::ChannelWriteHalf<russh::client::Msg>,
    _reader: ChannelReadHalf,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Held {
    /// Writes `data` to the command's stdin.
    pub async fn send(&self, data: &'static [u8]) -> Result<(), russh::Error> {
        self.writer.data(data).await
    }
}

/// What became of a command started with [`Connection::hold`].
pub enum Hold {
    /// It printed its first line (given here) and keeps running.
    Running(String, Held),
    /// It ended before printing a whole line.
    Exited(Output),
}

impl Connection {
    /// Every command passes here once started: the one place Erlang VM starts are counted.
    fn count_vms(&self, cmd: &Cmd) {
        let n = cmd.vm_starts();
        if n > 0 {
            self.inner
                .vm_starts
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// One of the connection's channel slots (sshd's MaxSessions), held until dropped.
    pub(super) async fn channel_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, SshError> {
        self.inner
            .channels
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SshError::Channel {
                host: self.target().host.clone(),
                reason: "connection is shutting down".into(),
            })
    }

    /// Starts `cmd` with stdin left open and no time limit, and waits (bounded by the command
    /// timeout) for its first line of output. For a remote lock that must live exactly as long
    /// as this run: if hactl dies, the connection drops and the remote command ends with it.
    pub async fn hold(&self, cmd: &Cmd) -> Result<Hold, SshError> {
        let target = self.target();
        let channel_err = |reason: String| SshError::Channel {
            host: target.host.clone(),
            reason,
        };
        let permit = self.channel_slot().await?;
        let deadline = Instant::from_std(super::deadline(
            std::time::Instant::now(),
            target.command_timeout,
        ));
        let work = async {
            let channel = self
                .inner
                .handle
                .channel_open_session()
                .await
                .map_err(|e| format!("cannot open a session channel: {e}"))?;
            let (mut reader, writer) = channel.split();
            let sudo = self.inner.sudo.get();
            writer
                .exec(true, cmd.remote_line(sudo, None).as_bytes())
                .await
                .map_err(|e| format!("cannot start the command: {e}"))?;
            self.count_vms(cmd);
            if let Some(head) = sudo.and_then(Sudo::stdin_head) {
                writer
                    .data_bytes(head)
                    .await
                    .map_err(|e| format!("cannot send the sudo password: {e}"))?;
            }
            let mut raw = Raw {
                stdout: Vec::new(),
                stderr: Vec::new(),
                status: None,
                signal: None,
            };
            loop {
                match reader.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        raw.stdout.extend_from_slice(&data);
                        if let Some(end) = raw.stdout.iter().position(|b| *b == b'\n') {
                            let line = String::from_utf8_lossy(&raw.stdout[..end]).into_owned();
                            return Ok((Some((line, writer, reader)), raw));
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        raw.stderr.extend_from_slice(&data)
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => raw.status = Some(exit_status),
                    Some(ChannelMsg::Failure) => {
                        return Err("the server refused to run the command".to_string());
                    }
                    Some(_) => {}
                    None => {
                        raw.status.get_or_insert(255);
                        return Ok((None, raw));
                    }
                }
            }
        };
        match timeout_at(deadline, work).await {
            Err(_) => Err(SshError::Timeout {
                host: target.host.clone(),
                what: format!(
                    "no answer within {} s from: {cmd}",
                    secs(target.command_timeout)
                ),
            }),
            Ok(Err(reason)) => Err(channel_err(format!("{reason} (command: {cmd})"))),
            Ok(Ok((Some((line, writer, reader)), _))) => Ok(Hold::Running(
                line,
                Held {
                    writer,
                    _reader: reader,
                    _permit: permit,
                },
            )),
            Ok(Ok((None, raw))) => Ok(Hold::Exited(raw.into_output())),
        }
    }
}
