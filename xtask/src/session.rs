//! An interactive QEMU run: tests type into the console (the Linux partition's shell) and
//! wait for what comes back, the way a person at the terminal would.
//!
//! Every wait has a deadline on silence ([`Patience`]: a guest that prints nothing for
//! the timeout hangs, output extends the wait up to a cap) and reports what was seen when
//! it passes, so a test never hangs without a message and a loaded host only slows it. The QEMU process is killed when the session is dropped.

use std::io::{BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::patience::Patience;
use crate::qemu::QEMU;
use crate::Error;

pub struct Session {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<String>,
    /// Every complete line so far (without `\r`).
    lines: Vec<String>,
    /// Bytes of the line being printed (a shell prompt has no newline).
    partial: String,
    echo: bool,
    /// Markers used by [`Self::shell`] so far.
    markers: u64,
}

impl Session {
    /// Starts `cmd` (a QEMU command line) with the console on pipes.
    pub fn start(mut cmd: Command, echo: bool) -> Result<Self, Error> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::new(format!("cannot start {QEMU}: {e}")))?;
        let stdin = child.stdin.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let tx = tx.clone();
            // Chunks, not lines: a prompt without a newline must be seen too.
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut buf = [0u8; 4096];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0
                        || tx
                            .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                            .is_err()
                    {
                        break;
                    }
                }
            });
        }
        Ok(Self {
            child,
            stdin,
            rx,
            lines: Vec::new(),
            partial: String::new(),
            echo,
            markers: 0,
        })
    }

    fn take(&mut self, chunk: &str) {
        if self.echo {
            print!("{chunk}");
            let _ = std::io::stdout().flush();
        }
        for c in chunk.chars() {
            match c {
                '\n' => self.lines.push(std::mem::take(&mut self.partial)),
                '\r' => {}
                c => self.partial.push(c),
            }
        }
    }

    /// Waits until a complete line after line `from` contains `needle`; returns its index.
    pub fn wait_line(
        &mut self,
        from: usize,
        needle: &str,
        timeout: Duration,
    ) -> Result<usize, Error> {
        let what = format!("a line with `{needle}`");
        self.wait_for(from, &what, timeout, |line| line.contains(needle))
    }

    /// Waits until a complete line after line `from` satisfies `matches`; returns its
    /// index, or an error naming `what` with the last output.
    fn wait_for(
        &mut self,
        from: usize,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Result<usize, Error> {
        let mut patience = Patience::new(timeout);
        // Lines already looked at are not looked at again (a console flood would make
        // every chunk rescan them all).
        let mut next = from;
        loop {
            if let Some(i) = (next..self.lines.len()).find(|&i| matches(&self.lines[i])) {
                return Ok(i);
            }
            next = next.max(self.lines.len());
            self.pump(&mut patience).map_err(|why| {
                Error::new(format!(
                    "waiting for {what}: {why}; last output:\n{}",
                    self.tail(30)
                ))
            })?;
        }
    }

    /// Waits until the text being printed (the unfinished last line) contains `needle`,
    /// e.g. a shell prompt.
    pub fn wait_prompt(&mut self, needle: &str, timeout: Duration) -> Result<(), Error> {
        let mut patience = Patience::new(timeout);
        while !self.partial.contains(needle) {
            self.pump(&mut patience).map_err(|why| {
                Error::new(format!(
                    "waiting for the prompt `{needle}`: {why}; last output:\n{}",
                    self.tail(30)
                ))
            })?;
        }
        Ok(())
    }

    fn pump(&mut self, patience: &mut Patience) -> Result<(), String> {
        let left = patience.left();
        if left.is_zero() {
            return Err(format!("timed out ({})", patience.why()));
        }
        match self.rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(chunk) => {
                patience.output();
                self.take(&chunk);
                Ok(())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().ok();
                Err(format!("QEMU exited ({status:?})"))
            }
        }
    }

    /// Types `text` on the console.
    pub fn send(&mut self, text: &str) -> Result<(), Error> {
        self.stdin
            .write_all(text.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| Error::new(format!("typing into QEMU: {e}")))
    }

    /// Runs one shell command and returns the lines it printed, leaving out the lines hv
    /// and the RT partition printed meanwhile (`[hv cpuN] `, `[rt cpuN] `).
    ///
    /// The command is framed by two markers the shell computes (`echo __begin_$((N))__`
    /// prints `__begin_N__`), so the shell's echo of the typed line, which another
    /// partition's line may break in two, never looks like a marker.
    pub fn shell(&mut self, command: &str, timeout: Duration) -> Result<Vec<String>, Error> {
        self.markers += 1;
        let n = self.markers;
        let (begin, end) = (format!("__begin_{n}__"), format!("__end_{n}__"));
        let from = self.lines.len();
        self.send(&format!(
            "echo __begin_$(({n}))__; {command}; echo __end_$(({n}))__\n"
        ))?;
        let first = self.wait_exact(from, &begin, timeout)?;
        let last = self.wait_exact(first + 1, &end, timeout)?;
        // Up to the end marker itself: a fragment of it before a break is dropped only
        // once the marker's whole line follows.
        let mut out = partition_lines(&self.lines[first + 1..=last]);
        out.pop();
        Ok(out)
    }

    /// Waits until a complete line after line `from` is exactly `text` (surrounding
    /// blanks aside); returns its index.
    fn wait_exact(&mut self, from: usize, text: &str, timeout: Duration) -> Result<usize, Error> {
        let what = format!("the line `{text}`");
        self.wait_for(from, &what, timeout, |line| line.trim() == text)
    }

    /// Lines from `from` on (complete lines only).
    pub fn lines_from(&self, from: usize) -> &[String] {
        &self.lines[from.min(self.lines.len())..]
    }

    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// The last `n` lines, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let start = self.lines.len().saturating_sub(n);
        let mut text = self.lines[start..].join("\n");
        if !self.partial.is_empty() {
            text.push('\n');
            text.push_str(&self.partial);
        }
        text
    }

    /// Waits until QEMU exits (after a quit typed with [`Self::send`], say), taking the
    /// output it prints meanwhile; an error if it stays silent and alive for `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus, Error> {
        let mut patience = Patience::new(timeout);
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if let Err(why) = self.pump(&mut patience) {
                if let Some(status) = self.exited() {
                    return Ok(status);
                }
                return Err(Error::new(format!(
                    "waiting for QEMU to exit: {why}; last output:\n{}",
                    self.tail(30)
                )));
            }
        }
    }

    /// Whether QEMU has exited (and with what).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// Whether `line` is one of hv's or the RT partition's (not the Linux console's).
fn is_prefixed(line: &str) -> bool {
    ["[hv cpu", "[rt cpu"].iter().any(|p| line.starts_with(p))
}

/// The partition's own lines among `lines`: without hv's and the RT partition's, and
/// without the start of a line they broke. hv gives a prefixed line that arrives while
/// the partition is mid-line a row of its own and then writes the unfinished line again
/// (see hv's console ring), so the fragment before the break is followed, after the
/// prefixed lines, by a line that starts with it.
pub fn partition_lines(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut broken = false;
    for line in lines {
        if is_prefixed(line) {
            broken = true;
            continue;
        }
        if broken
            && out
                .last()
                .is_some_and(|prev| line.starts_with(prev.as_str()))
        {
            out.pop();
        }
        broken = false;
        out.push(line.clone());
    }
    out
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn prefixed_lines_and_the_fragments_they_broke_are_left_out() {
        let seen = owned(&[
            "0x5A",
            "[rt cpu3] heartbeat 32 on vCPU 1",
            "[rt cpu2] heartbeat 32 on vCPU 0",
            "0x5A5AA5A5",
            "second",
        ]);
        assert_eq!(partition_lines(&seen), ["0x5A5AA5A5", "second"]);
    }

    #[test]
    fn a_line_broken_twice_is_kept_once_whole() {
        let seen = owned(&[
            "after help",
            "__end_7",
            "[rt cpu3] heartbeat 22",
            "__end_7",
            "[rt cpu2] heartbeat 22",
            "__end_7__",
        ]);
        assert_eq!(partition_lines(&seen), ["after help", "__end_7__"]);
    }

    #[test]
    fn lines_that_merely_look_alike_are_kept() {
        // No prefixed line in between: two real lines, the second longer.
        let seen = owned(&["ab", "abc", "[hv cpu0] x", "z"]);
        assert_eq!(partition_lines(&seen), ["ab", "abc", "z"]);
    }
}
