//! What a RabbitMQ node's log says about a failed boot. The init system only says "failed";
//! the cause is in the node's log, among the many lines the shutdown after it writes.

/// How many lines of the log's end are read.
pub const READ_LINES: u32 = 400;
const SHOWN: usize = 15;
const WIDTH: usize = 240;

/// From the end of a node's log: the first error lines since the last boot's banner (the
/// cause), else the last lines. Each line is indented and cut short.
pub fn excerpt(log: &str) -> Vec<String> {
    // Erlang's multi-line reports end with a line holding only the prefix: skip those.
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_end().ends_with('>'))
        .collect();
    let boot = lines
        .iter()
        .rposition(|l| l.contains(" Starting RabbitMQ "))
        .map_or(&lines[..], |i| &lines[i..]);
    let errors: Vec<&str> = boot
        .iter()
        .filter(|l| l.contains("[error]") || l.contains("[critical]"))
        .take(SHOWN)
        .copied()
        .collect();
    let shown = match errors.is_empty() {
        true => &lines[lines.len().saturating_sub(SHOWN)..],
        false => &errors[..],
    };
    shown
        .iter()
        .map(|l| match l.char_indices().nth(WIDTH) {
            Some((cut, _)) => format!("  {}…", &l[..cut]),
            None => format!("  {l}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_boots_first_errors_come_before_the_shutdown_noise() {
        let mut log = String::from(
            "t [error] <0.1.0> an old boot's error\n\
             t [info] <0.2.0>  Starting RabbitMQ 3.10.8 on Erlang 25\n\
             t [info] <0.2.0> booting\n\
             t [error] <0.9.0> Failed to start Ranch listener: eaddrinuse\n\
             t [error] <0.9.0> \n",
        );
        for i in 0..40 {
            log.push_str(&format!("t [error] <0.7.0> shutdown report {i}\n"));
        }
        let out = excerpt(&log);
        assert_eq!(out.len(), SHOWN);
        assert_eq!(
            out[0],
            "  t [error] <0.9.0> Failed to start Ranch listener: eaddrinuse"
        );
        assert_eq!(out[1], "  t [error] <0.7.0> shutdown report 0");
        assert!(!out.iter().any(|l| l.contains("old boot")));
    }

    #[test]
    fn without_errors_the_last_lines_cut_short() {
        let long = "x".repeat(WIDTH + 10);
        let log = format!("a\nb\n{long}\n");
        let out = excerpt(&log);
        assert_eq!(out.len(), 3);
        assert_eq!(out[2], format!("  {}…", "x".repeat(WIDTH)));
        assert!(excerpt("").is_empty());
    }
}
