//! Turning a plugin crash into a report a person can act on: the panic message (from
//! the plugin's captured stderr), a note when the plugin was stopped for flooding its
//! stderr, and a short backtrace of the plugin's own frames, demangled.

use std::fmt::Write as _;

use wasmtime::{Trap, WasmBacktrace};

/// Bytes of the plugin's stderr the host keeps; writes past it fail (and a Rust plugin
/// then aborts), so the host never buffers a flood.
pub(crate) const STDERR_BYTES: usize = 64 * 1024;
/// Bytes of stderr quoted in a crash report.
const QUOTED_STDERR: usize = 1000;
/// Frames in a crash report's backtrace.
const FRAMES: usize = 8;

/// The headline and the detail lines of a trap.
pub(crate) fn describe(e: &wasmtime::Error, stderr: &[u8]) -> (String, String) {
    let stderr = String::from_utf8_lossy(stderr);
    let trap = e.downcast_ref::<Trap>().map(|t| t.to_string()).unwrap_or_else(|| super::root_cause(e));
    let flooded = stderr.len() + 4096 >= STDERR_BYTES;
    let (mut message, rest) = match panic_message(&stderr) {
        Some((message, rest)) => (message, rest),
        None => (trap, stderr.trim().to_string()),
    };
    if flooded {
        let _ = write!(
            message,
            " (it wrote more than the {} KiB of stderr the host keeps, so its writes failed; plugins should report through the `log` interface)",
            STDERR_BYTES / 1024
        );
    }
    let mut detail = String::new();
    let rest = rest.trim();
    if !rest.is_empty() {
        let tail = &rest[rest.floor_char_boundary(rest.len().saturating_sub(QUOTED_STDERR))..];
        let _ = write!(detail, "\n  plugin stderr: {}", tail.replace('\n', "\n    "));
    }
    if let Some(bt) = e.downcast_ref::<WasmBacktrace>() {
        let frames = plugin_frames(bt);
        if !frames.is_empty() {
            let _ = write!(detail, "\n  backtrace: {}", frames.join(" <- "));
        }
    }
    (message, detail)
}

/// A Rust panic's message (`panicked at LOCATION:\nMESSAGE`), and the stderr without it.
fn panic_message(stderr: &str) -> Option<(String, String)> {
    let start = stderr.rfind("panicked at ")?;
    let after = &stderr[start + "panicked at ".len()..];
    let (location, body) = after.split_once(":\n").unwrap_or((after.lines().next().unwrap_or(""), ""));
    let message: Vec<&str> = body.lines().take_while(|l| !l.starts_with("note: run with `RUST_BACKTRACE")).collect();
    let line_start = stderr[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let message = format!("panicked at {location}: {}", message.join("\n    ").trim());
    Some((message, stderr[..line_start].to_string()))
}

/// The innermost frames that are the plugin's own: the panic and abort machinery of
/// the standard library is skipped, names are demangled and their hashes dropped.
fn plugin_frames(bt: &WasmBacktrace) -> Vec<String> {
    // Wasmtime's `Display` demangles (Rust v0 and legacy); one frame per line, the name
    // after the module's `!`.
    let text = bt.to_string();
    let names: Vec<String> = text
        .lines()
        .skip(1)
        .filter(|l| l.trim_start().split_once(':').is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
        .filter_map(|l| l.split_once('!').map(|(_, name)| clean(name)))
        .collect();
    let runtime = |n: &str| {
        ["std::", "core::", "alloc::", "__rust", "rust_panic", "__rustc::", "abort", "panic_abort::", "panic_unwind::"]
            .iter()
            .any(|p| n.starts_with(p))
    };
    let first_own = names.iter().position(|n| !runtime(n)).unwrap_or(0);
    // Runs of one frame (a runaway recursion) read as one line.
    let mut frames: Vec<(String, usize)> = Vec::new();
    for name in names.into_iter().skip(first_own) {
        match frames.last_mut() {
            Some((last, n)) if *last == name => *n += 1,
            _ => frames.push((name, 1)),
        }
    }
    frames
        .into_iter()
        .take(FRAMES)
        .map(|(name, n)| if n > 1 { format!("{name} (x{n})") } else { name })
        .collect()
}

/// `std[1a2b3c]::panicking::begin_panic::h0123456789abcdef` -> `std::panicking::begin_panic`.
fn clean(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c == '[' {
            // A v0 crate disambiguator: `[hex]`.
            let mut inner = String::new();
            while let Some(&d) = chars.peek() {
                chars.next();
                if d == ']' {
                    break;
                }
                inner.push(d);
            }
            if !inner.chars().all(|d| d.is_ascii_hexdigit()) {
                out.push('[');
                out.push_str(&inner);
                out.push(']');
            }
            continue;
        }
        out.push(c);
    }
    match out.rfind("::h") {
        Some(i) if out.len() - i == 19 && out[i + 3..].chars().all(|d| d.is_ascii_hexdigit()) => out.truncate(i),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{clean, panic_message};

    #[test]
    fn names_lose_hashes_and_disambiguators() {
        assert_eq!(clean("std[a1b2c3d4e5f60718]::panicking::begin_panic::<&str>"), "std::panicking::begin_panic::<&str>");
        assert_eq!(clean("ferry_test_hostile::recurse::he68985de5c27dd5b"), "ferry_test_hostile::recurse");
        assert_eq!(clean("<[u8] as core::fmt::Debug>::fmt"), "<[u8] as core::fmt::Debug>::fmt");
    }

    #[test]
    fn a_panic_message_is_found_after_other_output() {
        let stderr = "starting\nthread '<unnamed>' (1) panicked at src/lib.rs:7:9:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        let (message, rest) = panic_message(stderr).unwrap();
        assert_eq!(message, "panicked at src/lib.rs:7:9: boom");
        assert_eq!(rest, "starting\n");
    }
}
