//! ARF (RFC 5965) feedback reports: the `message/feedback-report` fields and
//! the complained-about address.

use super::mime::{Headers, Parsed, parse_headers, split_head};
use super::scan;

/// What a feedback report says.
#[derive(Debug, Default)]
pub struct Feedback {
    /// `Feedback-Type`, lowercase (abuse, fraud, opt-out, ...).
    pub feedback_type: Option<String>,
    /// Who was complained about, when the report or the returned message
    /// names anyone (every `Original-Rcpt-To`).
    pub addresses: Vec<String>,
}

/// True when the message is a feedback report: a `multipart/report` with
/// `report-type=feedback-report`, or any `message/feedback-report` part.
pub fn is_feedback(p: &Parsed<'_>) -> bool {
    // The `report-type` value is a piece of the header value: without
    // `feedback-report` anywhere in it (a cheap look) the type need not be
    // parsed at all, which is the case for nearly every message.
    let value = p
        .headers
        .get("content-type")
        .filter(|v| scan::contains_ci(v, "feedback-report"));
    let declared = value.is_some_and(|v| {
        super::mime::ContentType::parse(Some(v)).mime == "multipart/report"
            && super::mime::param(v, "report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("feedback-report"))
    });
    declared
        || p.leaves
            .iter()
            .any(|l| l.ctype.mime == "message/feedback-report")
}

/// Reads the report fields and the original recipient.
pub fn read(p: &Parsed<'_>) -> Feedback {
    let mut fb = Feedback::default();
    let report = p
        .leaves
        .iter()
        .find(|l| l.ctype.mime == "message/feedback-report");
    if let Some(leaf) = report {
        let h = parse_headers(leaf.body());
        fb.feedback_type = h
            .get("feedback-type")
            .map(|t| t.trim().to_ascii_lowercase());
        for name in ["original-rcpt-to", "removal-recipient"] {
            fb.addresses
                .extend(h.get_all(name).filter_map(scan::header_address));
        }
    }
    if fb.addresses.is_empty() {
        fb.addresses
            .extend(original_headers(p).and_then(|h| h.get("to").and_then(scan::header_address)));
    }
    fb
}

/// Headers of the returned message (`message/rfc822` or `text/rfc822-headers`).
fn original_headers<'p>(p: &'p Parsed<'_>) -> Option<Headers<'p>> {
    p.leaves
        .iter()
        .find(|l| is_original_part(&l.ctype.mime))
        .map(|l| parse_headers(split_head(l.body()).0))
}

/// Content types that carry the returned original message or its headers.
pub fn is_original_part(mime: &str) -> bool {
    matches!(
        mime,
        "message/rfc822"
            | "message/global"
            | "text/rfc822-headers"
            | "message/rfc822-headers"
            | "message/global-headers"
            | "message/partial"
    )
}
