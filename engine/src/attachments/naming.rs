//! Safe, deterministic archive names for attachments, as the document-backup layout has
//! them: `<UID>_<file name>/<SID>_<version>` and `versions/<UID>_<file name>.json`.
//!
//! Uniqueness comes from the ids, never from the file name: an id becomes an *id token*
//! that is plain ASCII (`A-Z a-z 0-9 -`, everything else `%XX`-escaped, so the mapping is
//! injective and a token never holds `_`), and the folder is `<token>_<name>`. Two
//! attachments can therefore only share a folder if their ids do, whatever their names:
//! names that differ by case or by Unicode normalisation (which a file system may fold
//! together) always sit under different tokens. Tokens themselves are ASCII, so the
//! only folding left is ASCII case, which the writer checks (`fold`).
//!
//! The file name part is made safe on its own: no separators, control characters,
//! bidirectional overrides or characters Windows refuses, no trailing dot or space, never
//! empty, and short enough that every path fits a ustar header (name <= 100 bytes,
//! prefix <= 155) with no extension records.

use sha2::{Digest, Sha256};

/// Bytes of a `<token>_<name>` folder: `versions/<folder>.json` still fits the 100-byte
/// ustar name field.
pub const MAX_FOLDER: usize = 90;
/// Longest id token; longer ids keep a prefix and a hash of the whole id.
const MAX_TOKEN: usize = 48;
/// What a name becomes when nothing of it is usable.
const UNNAMED: &str = "unnamed";

/// The ASCII id token for a uid or sid (never empty, never holds `_`, `.` or `/`).
pub fn id_token(id: &str) -> String {
    let mut token = String::with_capacity(id.len());
    for &b in id.as_bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            token.push(b as char);
        } else {
            token.push_str(&format!("%{b:02X}"));
        }
    }
    if token.is_empty() {
        // An empty id still needs a distinct, non-empty token; `%` alone escapes nothing.
        token.push('%');
    }
    if token.len() > MAX_TOKEN {
        // `~` is escaped everywhere else, so a shortened token cannot equal a full one.
        let hash = hex::encode(&Sha256::digest(id.as_bytes())[..8]);
        token.truncate(MAX_TOKEN - 17);
        token.push('~');
        token.push_str(&hash);
    }
    token
}

/// The key two tokens collide under on a case-insensitive file system.
pub fn fold(token: &str) -> String {
    token.to_ascii_lowercase()
}

/// Whether `c` must not appear in an archived name.
fn unsafe_char(c: char) -> bool {
    matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*')
        || c.is_control()
        // Bidirectional overrides and isolates make `gpj.exe` read as `exe.jpg`.
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The file name made safe, in at most `budget` bytes (the extension kept when short).
pub fn safe_name(name: &str, budget: usize) -> String {
    let mut safe: String = name.chars().map(|c| if unsafe_char(c) { '_' } else { c }).collect();
    // Windows drops trailing dots and spaces, which would fold `a.` onto `a`.
    let kept = safe.trim_end_matches(['.', ' ']).len();
    safe.truncate(kept);
    if safe.is_empty() {
        safe.push_str(UNNAMED);
    }
    if safe.len() <= budget {
        return safe;
    }
    // Too long: shorten the stem, keep a short extension, mark the cut with `~`.
    let ext = match safe.rfind('.') {
        Some(i) if i > 0 && safe.len() - i <= 16 => safe[i..].to_string(),
        _ => String::new(),
    };
    let room = budget.saturating_sub(ext.len() + 1);
    let stem_end = safe[..safe.len() - ext.len()].floor_char_boundary(room);
    format!("{}~{ext}", &safe[..stem_end])
}

/// `<token>_<safe name>` for an attachment whose uid became `token`.
pub fn folder(token: &str, file_name: &str) -> String {
    let budget = MAX_FOLDER.saturating_sub(token.len() + 1);
    format!("{token}_{}", safe_name(file_name, budget))
}

/// `<SID token>_<version>`: one version's file inside its attachment's folder.
pub fn version_file(sid: &str, version: i64) -> String {
    format!("{}_{version}", id_token(sid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(s: &str) -> bool {
        !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0']) && !s.ends_with(['.', ' '])
    }

    #[test]
    fn hostile_names_become_plain_segments() {
        let long = "x".repeat(300) + ".pdf";
        let cases = ["../../etc/passwd", "/etc/shadow", "con\\nul.txt", "", "nul\0byte.txt", "..", ".", "a\nb", "ab. . ", &long, "\u{202E}gpj.exe"];
        for name in cases {
            let f = folder("ATT-1", name);
            assert!(plain(&f), "{name:?} became {f:?}");
            assert!(f.len() <= MAX_FOLDER, "{name:?} became {} bytes", f.len());
            assert!(f.starts_with("ATT-1_"));
        }
        assert_eq!(folder("ATT-1", "../../etc/passwd"), "ATT-1_.._.._etc_passwd");
        assert_eq!(folder("ATT-1", ""), "ATT-1_unnamed");
        let f = folder("ATT-1", &long);
        assert!(f.ends_with("x~.pdf"), "{f}");
        // A multi-byte name is cut on a character boundary.
        let f = folder("ATT-1", &"é".repeat(200));
        assert!(f.len() <= MAX_FOLDER && f.ends_with("é~"), "{f}");
    }

    #[test]
    fn tokens_are_injective_ascii_and_never_hold_the_separator() {
        let ids = ["ATT-1", "att-1", "ATT_1", "ATT%5F1", "ATT.1", "", "%", "../x", "Zoë", "Zoe\u{308}"];
        let tokens: Vec<String> = ids.iter().map(|i| id_token(i)).collect();
        for (i, t) in tokens.iter().enumerate() {
            assert!(t.is_ascii() && !t.contains(['_', '.', '/']) && !t.is_empty(), "{:?} -> {t:?}", ids[i]);
            for (j, u) in tokens.iter().enumerate() {
                assert!(i == j || t != u, "{:?} and {:?} share the token {t}", ids[i], ids[j]);
            }
        }
        // Only ASCII case folds them together, and the writer checks exactly that.
        assert_eq!(fold(&id_token("ATT-1")), fold(&id_token("att-1")));
        let long = id_token(&"A".repeat(100));
        assert_eq!(long.len(), MAX_TOKEN);
        assert_ne!(long, id_token(&"A".repeat(101)));
    }

    #[test]
    fn paths_fit_a_ustar_header() {
        let token = id_token(&"Ü".repeat(40));
        let f = folder(&token, &"名".repeat(100));
        let member = format!("attachments/versions/{f}.json");
        let mut header = tar::Header::new_ustar();
        header.set_path(&member).unwrap();
        header.set_path(format!("attachments/{f}/{}", version_file(&"S".repeat(90), i64::MIN))).unwrap();
    }
}
