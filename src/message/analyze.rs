//! The classification pipeline: parse once, then try the sources of truth in
//! SPEC order — ARF, RFC 3464 fields, vendor texts, the returned message,
//! VERP — and fall back to auto-reply or not-a-bounce.

use std::borrow::Cow;
use std::cell::LazyCell;

use super::dsn::{self, DsnRecipient};
use super::mime::{self, Headers, Parsed};
use super::reason::normalize;
use super::recipient::{
    MAX_REASON_TEXT, recipient, recipient_in, settle_from_context, vendor_reasons,
};
use super::vendors::{self, TextRecipient};
use super::{
    Classification, Kind, Options, Reason, Recipient, arf, autoreply, providers, scan, ses,
};

/// Most bytes of bounce text we read: the part that names recipients and
/// reasons is at the top, and scanning a 50 MB body would only cost time.
const MAX_TEXT: usize = 64 * 1024;
/// Most recipients reported from one message.
const MAX_RECIPIENTS: usize = 100;

/// Classifies one parsed message (see [`super::classify`]).
pub fn run(raw: &[u8], opts: &Options) -> Classification {
    let parsed = mime::parse(raw);
    let message_id = parsed
        .headers
        .get("message-id")
        .map(|v| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
                .to_string()
        })
        .filter(|v| !v.is_empty());
    let mut c = decide(&parsed, opts, 0);
    c.message_id = message_id;
    c
}

fn verdict(kind: Kind, recipients: Vec<Recipient>, explanation: Option<String>) -> Classification {
    Classification {
        kind,
        message_id: None,
        recipients,
        feedback_type: None,
        explanation,
    }
}

fn not_bounce(why: impl Into<String>) -> Classification {
    verdict(Kind::NotBounce, Vec::new(), Some(why.into()))
}

/// The human-readable text of the message: its text parts (HTML only when
/// there is no plain text), outside the returned original, capped.
fn body_text(p: &Parsed<'_>) -> String {
    let is_text =
        |m: &str| m == "text/plain" || m == "text/enriched" || m == "message/delivery-status-text";
    let has_plain = p.leaves.iter().any(|l| is_text(&l.ctype.mime));
    let mut out = String::new();
    for leaf in &p.leaves {
        let mime = leaf.ctype.mime.as_ref();
        let wanted = is_text(mime) || (!has_plain && mime == "text/html");
        if !wanted || arf::is_original_part(mime) {
            continue;
        }
        let room = MAX_TEXT.saturating_sub(out.len());
        let text = leaf.text();
        let text = if mime == "text/html" {
            Cow::Owned(strip_tags(&text, room))
        } else {
            text
        };
        let text = cut(&text, room);
        // With its line end: one allocation, not a second to add it.
        out.reserve(text.len() + 1);
        out.push_str(text);
        out.push('\n');
        if out.len() >= MAX_TEXT {
            break;
        }
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes on a char boundary.
pub(super) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The text of an HTML body: each tag (`<` to `>`) becomes a space, an
/// unclosed tag at the end is dropped, and `&nbsp;`, `&lt;`, `&gt;` and
/// `&amp;` are decoded. Stops once at least `limit` bytes are out: the
/// caller keeps only that much (see `cut`), and what is out never changes.
///
/// One pass over bytes: `<`, `>` and `&` are ASCII, so they never sit
/// inside a multi-byte character. Decoding each run between tags on its
/// own equals decoding after stripping, because a tag leaves a space,
/// which no entity holds; one left-to-right pass equals the four
/// `replace` passes in turn, because every entity starts with its only
/// `&` (matches cannot overlap) and no decoded character is in an entity
/// decoded after it.
fn strip_tags(html: &str, limit: usize) -> String {
    let mut out = String::with_capacity(html.len().min(MAX_TEXT));
    let mut rest = html;
    while out.len() < limit {
        let Some(open) = mime::find_byte(rest.as_bytes(), b'<') else {
            push_entities_decoded(&mut out, rest);
            break;
        };
        push_entities_decoded(&mut out, &rest[..open]);
        let Some(close) = mime::find_byte(&rest.as_bytes()[open + 1..], b'>') else {
            break;
        };
        out.push(' ');
        rest = &rest[open + 1 + close + 1..];
    }
    out
}

/// Appends `text` with `&nbsp;`, `&lt;`, `&gt;` and `&amp;` decoded.
fn push_entities_decoded(out: &mut String, text: &str) {
    const ENTITIES: [(&str, char); 4] = [
        ("&nbsp;", ' '),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&amp;", '&'),
    ];
    let mut rest = text;
    while let Some(amp) = mime::find_byte(rest.as_bytes(), b'&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        match ENTITIES.iter().find(|(e, _)| rest.starts_with(e)) {
            Some((e, c)) => {
                out.push(*c);
                rest = &rest[e.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
}

fn decide(p: &Parsed<'_>, opts: &Options, nesting: usize) -> Classification {
    if arf::is_feedback(p) {
        let fb = arf::read(p);
        let recipients = fb.addresses.into_iter().map(feedback_recipient).collect();
        let mut c = verdict(Kind::Complaint, recipients, None);
        c.feedback_type = fb.feedback_type;
        return c;
    }

    let full = body_text(p);
    let (error, rest) = vendors::split_original(&full);
    // Normalised on first use: a message with a delivery-status part
    // mostly never needs it.
    let error_lower = LazyCell::new(|| normalize(cut(error, MAX_TEXT)));

    let dsn_text: Option<Cow<'_, str>> = p
        .leaves
        .iter()
        .find(|l| {
            matches!(
                l.ctype.mime.as_ref(),
                "message/delivery-status"
                    | "message/global-delivery-status"
                    | "text/delivery-status"
            )
        })
        .map(|l| l.text());
    let mut dsn = dsn_text.as_deref().map(dsn::parse).unwrap_or_default();
    if dsn.is_empty() && error_lower.contains("final-recipient:") {
        dsn = dsn::parse(error);
    }

    // The returned original's header fields, parsed on first use: read
    // for the sender addresses (only when the error text has an `@`), a
    // JMRP complaint and a bounce text that names no recipient.
    let original: LazyCell<Option<Headers>, _> = LazyCell::new(|| {
        p.leaves
            .iter()
            .find(|l| arf::is_original_part(&l.ctype.mime))
            // (`parse_head_only` finds where the header block ends as it parses it.)
            .and_then(|l| mime::parse_head_only(l.body(), ORIGINAL_FIELDS))
            .or_else(|| vendors::quoted_headers(rest))
    });

    let is_sender = |address: &str| {
        // (An address always has an `@`; without one, none equals it.)
        let Some(k) = mime::find_byte(address.as_bytes(), b'@') else {
            return false;
        };
        // (Asked about a few addresses: the fields are walked for each.)
        p.headers
            .iter()
            .any(|(n, v)| SENDER_FIELDS.contains(&n) && holds_address(v, address, k))
            || original.as_ref().is_some_and(|h| {
                ORIGINAL_SENDER_FIELDS
                    .iter()
                    .flat_map(|n| h.get_all(n))
                    .any(|v| holds_address(v, address, k))
            })
    };
    // The failed addresses the bounce text names, each with its lines.
    let texts_found = || {
        let mut texts = vendors::recipients(error, is_sender);
        if let Some(failed) = p.headers.get("x-failed-recipients") {
            // The listed addresses, in their order, each with the text
            // found for it: built as they are found, with no list of them
            // first.
            let mut ordered: Vec<TextRecipient> = Vec::new();
            scan::each_address(failed, |_, address| {
                let text = texts
                    .iter()
                    .find(|t| t.address.eq_ignore_ascii_case(&address))
                    .map(|t| t.text.clone())
                    .unwrap_or_default();
                ordered.push(TextRecipient { address, text });
                true
            });
            if !ordered.is_empty() {
                texts = ordered;
            }
        }
        texts
    };

    if !dsn.is_empty() {
        // A delivery-status recipient's text is found only under its own
        // address (or its Original-Recipient), and every address found in
        // the bounce text is written there (its domain lowercased): when
        // the text names none of them, no text is found for any.
        let named = dsn.iter().any(|r| {
            [r.address(), r.original_rcpt.as_deref()]
                .into_iter()
                .flatten()
                .any(|a| mentions(error, a))
        });
        let texts = if named { texts_found() } else { Vec::new() };
        let mut c = from_dsn(&dsn, &texts, &error_lower);
        let context = dsn_text.as_deref().map_or_else(
            || error_lower.to_string(),
            |t| cut(t, MAX_TEXT).to_ascii_lowercase(),
        );
        providers::apply(&p.headers, &context, &mut c.recipients);
        return c;
    }
    if error.contains("\"notificationType\"")
        && let Some(notice) = ses::parse(error)
    {
        return from_ses(notice);
    }
    if let Some(c) = hotmail_complaint(p, || original.as_ref()) {
        return c;
    }
    if let Some(c) = unsubscribe_request(p) {
        return c;
    }

    let bounce_sign = vendors::bounce_signs(&p.headers, &error_lower);
    if bounce_sign.is_some()
        && nesting == 0
        && let Some(inner) = forwarded_bounce(p, opts)
    {
        return inner;
    }
    if let Some(sign) = bounce_sign {
        let texts = texts_found();
        let one = texts.len() == 1;
        // Uncut, the error text's normalised form is `error_lower`.
        let (more, more_lower) = match (one, error.len() <= MAX_REASON_TEXT) {
            (true, true) => (error, Some(error_lower.as_str())),
            (true, false) => (error, None),
            (false, _) => ("", Some("")),
        };
        let mut recipients: Vec<Recipient> = texts
            .iter()
            .map(|t| recipient_in(&t.address, None, None, None, &t.text, more, more_lower))
            .collect();
        if recipients.is_empty()
            && let Some(a) = original
                .as_ref()
                .and_then(|h| h.get("to"))
                .and_then(scan::header_address)
        {
            recipients.push(recipient(&a, None, None, None, error, ""));
        }
        if recipients.is_empty()
            && let Some(a) = opts.verp.as_ref().and_then(|v| v.recipient(&p.headers))
        {
            recipients.push(recipient(&a, None, None, None, error, ""));
        }
        if recipients.is_empty() {
            return not_bounce(format!(
                "looks like a bounce ({sign}) but names no recipient"
            ));
        }
        // A warning that the MTA keeps trying is a delay, not a failure.
        let permanent = recipients
            .iter()
            .any(|r| r.status.as_deref().is_some_and(|s| s.starts_with('5')));
        let kind = if !permanent && vendors::is_delay_warning(&error_lower) {
            Kind::Delayed
        } else {
            Kind::Bounce
        };
        if let [one] = recipients.as_mut_slice() {
            settle_from_context(one, &error_lower);
        }
        let mut recipients = vendor_reasons(recipients);
        providers::apply(&p.headers, &error_lower, &mut recipients);
        return verdict(kind, recipients, None);
    }

    if let Some(sign) = autoreply::signs(&p.headers, &error_lower) {
        let replier = p.headers.get("from").and_then(scan::header_address);
        let recipients = replier
            .map(|address| Recipient {
                address,
                status: None,
                reply_code: None,
                action: None,
                diagnostic: None,
                reason: Reason::Vacation,
                hard: None,
            })
            .into_iter()
            .collect();
        return verdict(
            Kind::AutoReply,
            recipients,
            Some(format!("auto-reply: {sign}")),
        );
    }

    if p.headers.is_empty() {
        return not_bounce("no header fields: not a mail message");
    }
    not_bounce("no delivery status, bounce text or auto-reply sign")
}

fn feedback_recipient(address: String) -> Recipient {
    Recipient {
        address,
        status: None,
        reply_code: None,
        action: None,
        diagnostic: None,
        reason: Reason::Feedback,
        hard: None,
    }
}

fn from_ses(notice: ses::Notice) -> Classification {
    match notice {
        ses::Notice::Delivery => not_bounce("Amazon SES delivery notification (success)"),
        ses::Notice::Complaint(addresses, fbt) => {
            let mut c = verdict(
                Kind::Complaint,
                addresses.into_iter().map(feedback_recipient).collect(),
                None,
            );
            c.feedback_type = fbt;
            c
        }
        ses::Notice::Bounce(list) => {
            let recipients: Vec<Recipient> = list
                .iter()
                .map(|r| {
                    let diag = r.diagnostic.as_deref().unwrap_or("");
                    let diag = diag
                        .split_once(';')
                        .filter(|(t, _)| !t.contains(' '))
                        .map_or(diag, |(_, d)| d.trim());
                    recipient(
                        &r.address,
                        r.status.as_deref(),
                        r.action.as_deref(),
                        None,
                        diag,
                        "",
                    )
                })
                .collect();
            if recipients.is_empty() {
                return not_bounce("Amazon SES bounce notification names no recipient");
            }
            verdict(Kind::Bounce, recipients, None)
        }
    }
}

/// The fields read from a returned original's header block (by
/// [`ORIGINAL_SENDER_FIELDS`] and its `To`): only these are decoded.
pub(super) const ORIGINAL_FIELDS: &[&str] = &["from", "to", "return-path", "sender", "reply-to"];

/// Microsoft's feedback loop (JMRP) sends complaints as a plain message with
/// the reported mail attached, not as ARF.
fn hotmail_complaint<'h>(
    p: &Parsed<'_>,
    original: impl FnOnce() -> Option<&'h Headers<'h>>,
) -> Option<Classification> {
    // (Compared ignoring ASCII case rather than on a lowercase copy.)
    const SUBJECT: &str = "complaint about message from";
    let subject = p.headers.get("subject")?.trim_start().as_bytes();
    if !subject
        .get(..SUBJECT.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(SUBJECT.as_bytes()))
    {
        return None;
    }
    let to = original()?.get("to").and_then(scan::header_address);
    let mut c = verdict(
        Kind::Complaint,
        to.into_iter().map(feedback_recipient).collect(),
        None,
    );
    c.feedback_type = Some("abuse".into());
    Some(c)
}

/// Apple Mail's one-tap unsubscribe mails the list with
/// `X-Apple-Unsubscribe: true`: an opt-out from the sender of that mail.
fn unsubscribe_request(p: &Parsed<'_>) -> Option<Classification> {
    if !p
        .headers
        .get("x-apple-unsubscribe")?
        .eq_ignore_ascii_case("true")
    {
        return None;
    }
    let from = p.headers.get("from").and_then(scan::header_address)?;
    let mut c = verdict(Kind::Complaint, vec![feedback_recipient(from)], None);
    c.feedback_type = Some("opt-out".into());
    Some(c)
}

/// A bounce that relays another bounce (a mail system forwarding a DSN it
/// received) names the recipient only in the attached one.
fn forwarded_bounce(p: &Parsed<'_>, opts: &Options) -> Option<Classification> {
    let leaf = p
        .leaves
        .iter()
        .find(|l| matches!(l.ctype.mime.as_ref(), "message/rfc822" | "message/global"))?;
    let inner = mime::parse(leaf.body());
    let c = decide(&inner, opts, 1);
    matches!(c.kind, Kind::Bounce | Kind::Delayed).then_some(c)
}

/// The message's header fields whose addresses belong to the sender side:
/// never a failed recipient.
const SENDER_FIELDS: &[&str] = &["from", "to", "cc", "return-path", "reply-to"];
/// The returned original's header fields whose addresses are the sender's.
const ORIGINAL_SENDER_FIELDS: &[&str] = &["from", "return-path", "sender", "reply-to"];

/// Does the header value `value` hold `address` (ignoring ASCII case)
/// among the addresses [`scan::each_address_part`] finds in it?
/// `first_at` is where the first `@` of `address` is (found once for all
/// the values asked about).
///
/// Asked for each address a bounce text names, instead of listing every
/// sender-side address first: each found address is a piece of `value`,
/// so `address` can only be found where it is written, and it is written
/// only where its first `@` sits on an `@` of `value`. The few values
/// that pass this check are scanned for addresses; the rest, most, not.
fn holds_address(value: &str, address: &str, first_at: usize) -> bool {
    let mut found = false;
    if written_in(value.as_bytes(), address.as_bytes(), first_at) {
        scan::each_address_part(value, |_, e| {
            found = e.as_str().eq_ignore_ascii_case(address);
            !found
        });
    }
    found
}

/// Does `text` hold `address`, ignoring ASCII case? (See [`written_in`].)
/// Without an `@`, `address` is taken to be there.
fn mentions(text: &str, address: &str) -> bool {
    let a = address.as_bytes();
    mime::find_byte(a, b'@').is_none_or(|k| written_in(text.as_bytes(), a, k))
}

/// Is `address` (its first `@` at `first_at`) written in `text`, ignoring
/// ASCII case? It is looked for only where its `@` would sit on one of
/// `text`'s: `@` is rarer in a text than any letter. (Inlined: called
/// apart, the sender check measured 0.8M instructions more a run.)
#[inline]
fn written_in(text: &[u8], address: &[u8], first_at: usize) -> bool {
    let (a, k) = (address, first_at);
    let mut from = 0;
    while let Some(i) = mime::find_byte(&text[from..], b'@') {
        let at = from + i;
        from = at + 1;
        if at >= k
            && text
                .get(at - k..at - k + a.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(a))
        {
            return true;
        }
    }
    false
}

/// Does [`settle_from_context`] read its context for `r`? Only for a
/// user-unknown not from a `.1.1` status, or a filtered one; for any
/// other it returns at once (a test holds the two to each other).
fn context_may_settle(r: &Recipient) -> bool {
    match r.reason {
        Reason::UserUnknown => !r.status.as_deref().is_some_and(|s| s.ends_with(".1.1")),
        Reason::Filtered => true,
        _ => false,
    }
}

fn from_dsn(
    dsn: &[DsnRecipient],
    texts: &[TextRecipient],
    error_lower: &LazyCell<String, impl FnOnce() -> String>,
) -> Classification {
    let success = |r: &DsnRecipient| {
        matches!(
            r.action.as_deref(),
            Some("delivered" | "relayed" | "expanded" | "deliverable")
        ) || r.status.as_deref().is_some_and(|s| s.starts_with('2'))
    };
    let failed: Vec<&DsnRecipient> = dsn
        .iter()
        .filter(|r| !success(r))
        .take(MAX_RECIPIENTS)
        .collect();
    if failed.is_empty() {
        return not_bounce("delivery status notification reports success");
    }
    let delayed = |r: &&DsnRecipient| {
        r.action.as_deref() == Some("delayed")
            || r.status.as_deref().is_some_and(|s| s.starts_with('4')) && r.action.is_none()
    };
    let kind = if failed.iter().all(delayed) {
        Kind::Delayed
    } else {
        Kind::Bounce
    };
    let one = failed.len() == 1;
    let recipients = failed
        .iter()
        .filter_map(|r| {
            let address = r.address()?;
            let text = texts
                .iter()
                .find(|t| {
                    t.address.eq_ignore_ascii_case(address)
                        || r.original_rcpt
                            .as_deref()
                            .is_some_and(|o| t.address.eq_ignore_ascii_case(o))
                })
                .map(|t| t.text.as_str())
                .unwrap_or("");
            let diagnostic = r.diagnostic.as_deref().unwrap_or("");
            let mut rc = recipient(
                address,
                r.status.as_deref(),
                r.action.as_deref(),
                r.diag_type.as_deref(),
                diagnostic,
                text,
            );
            if rc.reason == Reason::OnHold || rc.reason == Reason::Undefined {
                let extra = if one { error_lower.as_str() } else { "" };
                let again = recipient(
                    address,
                    r.status.as_deref(),
                    r.action.as_deref(),
                    r.diag_type.as_deref(),
                    diagnostic,
                    extra,
                );
                rc.reason = again.reason;
                rc.hard = again.hard;
            }
            // (The error text, normalised on first use, is not made for a
            // `5.1.1` user-unknown, the most common DSN verdict.)
            if one && context_may_settle(&rc) {
                settle_from_context(&mut rc, error_lower.as_str());
            }
            if let Some(reason) = r.category.as_deref().and_then(providers::powermta_category) {
                providers::set_reason(&mut rc, reason);
            }
            if rc.diagnostic.is_none() && !text.trim().is_empty() {
                rc.diagnostic = Some(text.split_whitespace().collect::<Vec<_>>().join(" "));
            }
            Some(rc)
        })
        .collect::<Vec<_>>();
    if recipients.is_empty() {
        return not_bounce("delivery status notification names no recipient");
    }
    verdict(kind, vendor_reasons(recipients), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `strip_tags` as it was written first: chars, then four `replace`s.
    fn strip_tags_reference(html: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => {
                    in_tag = false;
                    out.push(' ');
                }
                _ if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.replace("&nbsp;", " ")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    #[test]
    fn settle_from_context_changes_only_what_context_may_settle() {
        // Contexts that settle a user-unknown as suspended and a filtered
        // as user-unknown (and some that do not).
        let contexts = [
            "",
            "account disabled",
            "this account has been disabled or discontinued",
            "mailbox suspended",
            "user unknown",
            "no such user here",
            "550 5.1.1 user unknown: no such user",
            "the email account that you tried to reach does not exist",
            "550 user unknown in local recipient table",
        ];
        let diagnostics = [None, Some("550 5.1.1 User unknown"), Some("blocked")];
        let statuses = [
            None,
            Some("5.1.1"),
            Some("5.2.1"),
            Some("4.1.1"),
            Some("5.7.1"),
        ];
        // The contexts do settle what may be settled.
        for (reason, diagnostic) in [
            (Reason::UserUnknown, None),
            (Reason::Filtered, Some("550 5.1.1 User unknown")),
        ] {
            let r = Recipient {
                address: "a@example.org".into(),
                status: None,
                reply_code: None,
                action: None,
                diagnostic: diagnostic.map(Into::into),
                reason,
                hard: None,
            };
            assert!(context_may_settle(&r));
            assert!(
                contexts.iter().any(|c| {
                    let mut settled = r.clone();
                    settle_from_context(&mut settled, c);
                    settled != r
                }),
                "{reason:?}"
            );
        }
        for &reason in Reason::ALL {
            for status in statuses {
                for diagnostic in diagnostics {
                    let r = Recipient {
                        address: "a@example.org".into(),
                        status: status.map(Into::into),
                        reply_code: None,
                        action: None,
                        diagnostic: diagnostic.map(Into::into),
                        reason,
                        hard: reason.hardness(true),
                    };
                    if context_may_settle(&r) {
                        continue;
                    }
                    for context in contexts {
                        let mut settled = r.clone();
                        settle_from_context(&mut settled, context);
                        assert_eq!(settled, r, "{reason:?} {status:?} {context:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn mentions_is_a_case_blind_substring_search() {
        let texts = [
            "",
            "<Jo@Example.ORG>: host said 550",
            "to jo@example.org.",
            "@@jo@example.org",
            "xjo@example.orgx",
            "jo@example.or",
            "o@example.org",
        ];
        for t in texts {
            for a in ["jo@example.org", "JO@EXAMPLE.ORG", "@example.org", "x@y"] {
                let want = t.to_ascii_lowercase().contains(&a.to_ascii_lowercase());
                assert_eq!(mentions(t, a), want, "{t:?} {a:?}");
            }
            assert!(mentions(t, "no at sign"), "{t:?}");
        }
    }

    #[test]
    fn holds_address_agrees_with_listing_the_addresses() {
        let values = [
            "",
            "Jo <jo@example.org>",
            "JO@Example.ORG, other@example.net",
            "\"a@b\"@example.org",
            "x.jo@example.org; <jo@example.org.>",
            "jo@example.org@example.org",
            "=?utf-8?q?J=C3=B6?= <jö@exämple.org>, jo@ex",
            "<@relay:jo@example.org>",
            "mailto:jo@example.org?subject=x",
            "jo@example..org jo@example.org",
        ];
        let addresses = [
            "jo@example.org",
            "JO@EXAMPLE.ORG",
            "o@example.org",
            "jo@example.or",
            "\"a@b\"@example.org",
            "b\"@example.org",
            "other@example.net",
            "jo@example.org.",
            "org@example.org",
            "jö@exämple.org",
            "jo@ex",
            "noat",
        ];
        for v in values {
            let mut listed: Vec<String> = Vec::new();
            scan::each_address_part(v, |_, e| {
                listed.push(e.as_str().to_string());
                true
            });
            for a in addresses {
                let want = listed.iter().any(|e| e.eq_ignore_ascii_case(a));
                let got = a.find('@').is_some_and(|k| holds_address(v, a, k));
                assert_eq!(got, want, "{v:?} {a:?}");
            }
            for a in &listed {
                let k = a.find('@').unwrap();
                assert!(holds_address(v, a, k), "{v:?} {a:?}");
                assert!(holds_address(v, &a.to_ascii_uppercase(), k), "{v:?} {a:?}");
            }
        }
    }

    #[test]
    fn strip_tags_agrees_with_the_reference() {
        for html in [
            "",
            "plain",
            "<p>a</p>b",
            "a > b <i>c",
            "<<b>>x",
            "&amp;lt; &nbsp&nbsp; &lt;&gt;&amp;",
            "&am<b>p; &amp<br>;",
            "x &amp",
            "é<b>ü</b>&nbsp;ß",
            "<unclosed &amp;",
            "&&lt;gt;",
        ] {
            let want = strip_tags_reference(html);
            assert_eq!(strip_tags(html, usize::MAX), want, "{html:?}");
            for limit in 0..=want.len() + 1 {
                let got = strip_tags(html, limit);
                assert_eq!(cut(&got, limit), cut(&want, limit), "{html:?} {limit}");
            }
        }
    }
}
