//! Auto-replies (RFC 3834 and the usual vacation / out-of-office signs).

use super::mime::Headers;

/// Subject beginnings and fragments that vacation responders use
/// (lowercase). Fragments must not also describe a bounce.
const SUBJECT_SIGNS: &[&str] = &[
    "auto:",
    "auto-reply",
    "auto reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "automatic reply",
    "automatische antwort",
    "abwesenheitsnotiz",
    "out of office",
    "out of the office",
    "out-of-office",
    "on vacation",
    "vacation reply",
    "away from my mail",
    "away from the office",
    "réponse automatique",
    "respuesta automática",
    "risposta automatica",
    "自動応答",
    "自動返信",
    "不在",
];

/// Body phrases of vacation messages (lowercase).
const BODY_SIGNS: &[&str] = &[
    "i am away on vacation",
    "i am away until",
    "i am out of the office",
    "i'm out of the office",
    "i will be traveling for work on",
    "i am currently out of the office",
    "i'm currently out of the office",
    "i am on vacation",
    "out of the office until",
];

/// Why the message looks like an auto-reply, or `None`.
pub fn signs(h: &Headers, body_lower: &str) -> Option<&'static str> {
    if let Some(v) = h.get("auto-submitted") {
        let v = v.to_ascii_lowercase();
        if v.starts_with("auto-replied") || v.starts_with("auto-generated") {
            return Some("Auto-Submitted header (RFC 3834)");
        }
    }
    for name in [
        "x-autoreply",
        "x-autorespond",
        "x-autoresponder",
        "x-auto-response",
    ] {
        if h.get(name).is_some() {
            return Some("X-Autoreply header");
        }
    }
    if h.get("precedence")
        .is_some_and(|p| p.eq_ignore_ascii_case("auto_reply"))
    {
        return Some("Precedence: auto_reply");
    }
    let subject = h.get("subject").unwrap_or("").to_lowercase();
    if SUBJECT_SIGNS.iter().any(|s| subject.contains(s)) {
        return Some("vacation subject");
    }
    if BODY_SIGNS.iter().any(|s| body_lower.contains(s)) {
        return Some("vacation text in the body");
    }
    None
}
