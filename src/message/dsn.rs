//! RFC 3464 delivery status notifications: the per-recipient field groups of
//! a `message/delivery-status` part (or of DSN fields that an MTA wrote into
//! a plain-text body).

use std::borrow::Cow;

use super::scan;

/// The fields [`parse`] reads, lowercase.
const FIELDS: &[&str] = &[
    "final-recipient",
    "original-recipient",
    "x-actual-recipient",
    "action",
    "status",
    "diagnostic-code",
    "remote-mta",
    "x-powermta-bouncecategory",
];

/// The lowercase name of a field [`parse`] reads; "" for any other.
fn known(name: &str) -> &'static str {
    // (The names are lowercase: only `name` needs lowercasing.)
    FIELDS
        .iter()
        .find(|f| scan::is_lowercase_of(f.as_bytes(), name.as_bytes()))
        .map_or("", |f| f)
}

/// One recipient group of a DSN. The text fields borrow from the parsed
/// text (no copy per field and message) unless a field was folded over
/// several lines or had to be lowercased.
#[derive(Debug, Default, Clone)]
pub struct DsnRecipient<'a> {
    /// `Final-Recipient` address.
    pub final_rcpt: Option<Cow<'a, str>>,
    /// `Original-Recipient` address.
    pub original_rcpt: Option<Cow<'a, str>>,
    /// `X-Actual-Recipient` address (Sendmail, Postfix aliases).
    pub actual_rcpt: Option<Cow<'a, str>>,
    /// `Action`, lowercase.
    pub action: Option<Cow<'a, str>>,
    /// The enhanced code from `Status`.
    pub status: Option<Cow<'a, str>>,
    /// The type of `Diagnostic-Code` (`smtp`, `x-unix`, ...), lowercase.
    pub diag_type: Option<Cow<'a, str>>,
    /// The text of `Diagnostic-Code` without its type.
    pub diagnostic: Option<Cow<'a, str>>,
    /// `Remote-MTA` host.
    pub remote_mta: Option<Cow<'a, str>>,
    /// `X-PowerMTA-BounceCategory` (PowerMTA's own classification).
    pub category: Option<Cow<'a, str>>,
}

impl DsnRecipient<'_> {
    /// The address this group reports on.
    pub fn address(&self) -> Option<&str> {
        self.final_rcpt
            .as_deref()
            .or(self.original_rcpt.as_deref())
            .or(self.actual_rcpt.as_deref())
    }

    fn is_empty(&self) -> bool {
        self.address().is_none()
            && self.action.is_none()
            && self.status.is_none()
            && self.diagnostic.is_none()
    }
}

/// Where the type of a `type; value` field ends (its `;`), when it has one.
fn type_end(value: &str) -> Option<usize> {
    let semi = memchr::memchr(b';', value.as_bytes())?;
    let t = &value[..semi];
    // (Cheapest test first: all three must hold.)
    (t.len() < 16 && !t.as_bytes().contains(&b' ') && !scan::trim(t).is_empty()).then_some(semi)
}

/// Splits `type; value` fields.
fn typed(value: &str) -> (Option<&str>, &str) {
    match type_end(value) {
        Some(semi) => (
            Some(scan::trim(&value[..semi])),
            trim_spaced(&value[semi + 1..]),
        ),
        None => (None, scan::trim(value)),
    }
}

/// [`scan::trim`] for text after a `:` or `;`, which most often starts
/// with one space: without it the ends are most often plain, which
/// `scan::trim` sees at once (a space sends it the long way, about 100
/// instructions more).
fn trim_spaced(s: &str) -> &str {
    scan::trim(s.strip_prefix(' ').unwrap_or(s))
}

/// `part` (a slice of `value`) with `value`'s lifetime: borrowed when
/// `value` borrows from the parsed text, else copied.
fn keep<'a>(value: &Cow<'a, str>, part: &str) -> Cow<'a, str> {
    if let Cow::Borrowed(v) = value {
        // The field readers return slices of their input: `part`'s offset
        // in `v` finds the same bytes there. (Checked: any other `part`
        // is copied.)
        let start = (part.as_ptr() as usize).wrapping_sub(v.as_ptr() as usize);
        if let Some(same) = v.get(start..start.wrapping_add(part.len()))
            && std::ptr::eq(same.as_ptr(), part.as_ptr())
        {
            return Cow::Borrowed(same);
        }
    }
    Cow::Owned(part.to_string())
}

/// `keep`, lowercased: borrowed when `part` has no uppercase ASCII.
fn keep_lower<'a>(value: &Cow<'a, str>, part: &str) -> Cow<'a, str> {
    if part.bytes().any(|c| c.is_ascii_uppercase()) {
        Cow::Owned(part.to_ascii_lowercase())
    } else {
        keep(value, part)
    }
}

/// The value of a `type; value` field, when its type is not needed.
fn typed_value(value: &str) -> &str {
    trim_spaced(type_end(value).map_or(value, |semi| &value[semi + 1..]))
}

/// Parses DSN fields from text. Per-message fields are skipped; a new
/// recipient group starts at each `Final-Recipient` (or at an
/// `Original-Recipient` when the current group already has one).
pub fn parse(text: &str) -> Vec<DsnRecipient<'_>> {
    let mut out: Vec<DsnRecipient> = Vec::new();
    let mut cur = DsnRecipient::default();
    // The field being read: applied once the next line shows that no
    // continuation line follows. A value borrows from `text` unless a
    // continuation line is appended. A field this function does not read
    // is `None`: its value and continuation lines are never looked at.
    let mut pending: Option<(&'static str, Cow<'_, str>)> = None;
    let mut count = 0;
    for line in scan::lines(text) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = pending.as_mut()
                && v.len() < 8192
            {
                // (The indent is whitespace: trimmed here, it would send
                // `scan::trim` the long way.)
                let more = scan::trim(line.trim_start_matches([' ', '\t']));
                match v {
                    // The first continuation: one copy with room for it
                    // (`to_mut` would copy exactly, then grow twice).
                    Cow::Borrowed(b) => {
                        let mut s = String::with_capacity(b.len() + 1 + more.len());
                        s.push_str(b);
                        s.push(' ');
                        s.push_str(more);
                        *v = Cow::Owned(s);
                    }
                    Cow::Owned(s) => {
                        s.push(' ');
                        s.push_str(more);
                    }
                }
            }
            continue;
        }
        if let Some((name, value)) = pending.take() {
            apply(name, value, &mut cur, &mut out);
        }
        // (A line that is no field, or a field not read, ends the field
        // before it all the same.)
        // (`split_once(':')` with memchr, which costs less per line.)
        pending = memchr::memchr(b':', line.as_bytes())
            .map(|colon| (known(&line[..colon]), &line[colon + 1..]))
            .filter(|(name, _)| !name.is_empty())
            .map(|(name, value)| (name, Cow::Borrowed(trim_spaced(value))));
        count += 1;
        if count > 4096 {
            break;
        }
    }
    if let Some((name, value)) = pending.take() {
        apply(name, value, &mut cur, &mut out);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.retain(|r| r.address().is_some());
    out
}

/// Reads one field (`name` from [`FIELDS`]) into the current group `cur`,
/// first moving `cur` to `out` when the field starts a new group.
fn apply<'a>(
    name: &'static str,
    value: Cow<'a, str>,
    cur: &mut DsnRecipient<'a>,
    out: &mut Vec<DsnRecipient<'a>>,
) {
    // The value trimmed: a borrowed value was trimmed by [`parse`] already,
    // only a folded one (a continuation line may be blank) needs it.
    let trimmed = match &value {
        Cow::Borrowed(v) => v,
        Cow::Owned(v) => scan::trim(v),
    };
    match name {
        "final-recipient" | "original-recipient" | "x-actual-recipient" => {
            let starts_new = match name {
                "final-recipient" => cur.final_rcpt.is_some(),
                "original-recipient" => cur.original_rcpt.is_some(),
                _ => cur.actual_rcpt.is_some(),
            };
            if starts_new && !cur.is_empty() {
                out.push(std::mem::take(cur));
            }
            // Borrowed (like the other fields) unless the domain needs
            // lowercasing or the value was folded.
            let addr = scan::header_written(typed_value(&value)).map(|w| {
                if w.is_address() {
                    keep(&value, w.as_str())
                } else {
                    Cow::Owned(w.to_address())
                }
            });
            match name {
                "final-recipient" => cur.final_rcpt = addr,
                "original-recipient" => cur.original_rcpt = addr,
                _ => cur.actual_rcpt = addr,
            }
        }
        "action" => cur.action = Some(keep_lower(&value, trimmed)),
        "status" => cur.status = scan::status_code(&value).map(|s| keep(&value, s)),
        "diagnostic-code" => {
            let (t, v) = typed(&value);
            cur.diag_type = t.map(|t| keep_lower(&value, t));
            cur.diagnostic = Some(v).filter(|d| !d.is_empty()).map(|d| keep(&value, d));
        }
        "remote-mta" => cur.remote_mta = Some(keep(&value, typed_value(&value))),
        "x-powermta-bouncecategory" => cur.category = Some(keep(&value, trimmed)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `known` as first written.
    fn known_reference(name: &str) -> &'static str {
        FIELDS
            .iter()
            .find(|f| f.len() == name.len() && name.eq_ignore_ascii_case(f))
            .map_or("", |f| f)
    }

    /// `typed` as first written.
    fn typed_reference(value: &str) -> (Option<String>, &str) {
        match value.split_once(';') {
            Some((t, v)) if !t.trim().is_empty() && !t.contains(' ') && t.len() < 16 => {
                (Some(t.trim().to_ascii_lowercase()), v.trim())
            }
            _ => (None, value.trim()),
        }
    }

    /// `parse` as first written: every line's field kept, then read.
    fn parse_reference(text: &str) -> Vec<DsnRecipient<'_>> {
        let mut out: Vec<DsnRecipient> = Vec::new();
        let mut cur = DsnRecipient::default();
        // Values borrow from `text` unless a continuation line is appended.
        // Room for a field per 32 bytes (fields are longer): one allocation.
        let mut fields: Vec<(&'static str, Cow<'_, str>)> =
            Vec::with_capacity((text.len() / 32 + 1).min(4097));
        for line in scan::lines(text) {
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = fields.last_mut()
                    && v.len() < 8192
                {
                    let v = v.to_mut();
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':')
                && !name.is_empty()
                && !name.contains(' ')
            {
                fields.push((known_reference(name), Cow::Borrowed(value.trim())));
            } else {
                // A line that is no field ends the field before it.
                fields.push(("", Cow::Borrowed("")));
            }
            if fields.len() > 4096 {
                break;
            }
        }
        for (name, value) in fields {
            match name {
                "final-recipient" | "original-recipient" | "x-actual-recipient" => {
                    let starts_new = match name {
                        "final-recipient" => cur.final_rcpt.is_some(),
                        "original-recipient" => cur.original_rcpt.is_some(),
                        _ => cur.actual_rcpt.is_some(),
                    };
                    if starts_new && !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    let (_, v) = typed_reference(&value);
                    let addr = scan::header_address(v).map(Cow::Owned);
                    match name {
                        "final-recipient" => cur.final_rcpt = addr,
                        "original-recipient" => cur.original_rcpt = addr,
                        _ => cur.actual_rcpt = addr,
                    }
                }
                "action" => cur.action = Some(value.trim().to_ascii_lowercase().into()),
                "status" => {
                    cur.status = scan::status_code(&value).map(|s| s.to_string().into());
                }
                "diagnostic-code" => {
                    let (t, v) = typed_reference(&value);
                    cur.diag_type = t.map(Cow::Owned);
                    cur.diagnostic = Some(v)
                        .filter(|d| !d.is_empty())
                        .map(|d| d.to_string().into());
                }
                "remote-mta" => {
                    cur.remote_mta = Some(typed_reference(&value).1.to_string().into());
                }
                "x-powermta-bouncecategory" => {
                    cur.category = Some(value.trim().to_string().into());
                }
                _ => {}
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out.retain(|r| r.address().is_some());
        out
    }

    #[test]
    fn parse_agrees_with_the_reference() {
        for text in [
            "Final-Recipient: rfc822; a@example.jp\nAction: FAILED\nStatus: 5.1.1\nDiagnostic-Code: SMTP; 550 no\n  such user\n",
            "Reporting-MTA: dns; mx\n  folded\nX-Actual-Recipient: rfc822;b@example.jp\nRemote-MTA: dns; mx.example.jp\n",
            "Original-Recipient: rfc822;c@example.jp\nOriginal-Recipient: rfc822;d@example.jp\nStatus: 4.4.7\n",
            "final-recipient:  <e@example.jp>\nnot a field\n continued\nDiagnostic-Code: 550; with spaces in type\n",
            "Diagnostic Code: x; y\nFinal-Recipient: a b; f@example.jp\nX-PowerMTA-BounceCategory:  bad-mailbox \n\tmore\n",
            "Final-Recipient: rfc822; g@example.jp\r\nDiagnostic-Code: averyveryverylongtype; v\r\nDiagnostic-Code: ; v\r\n",
            " leading continuation\nFinal-Recipient:\n rfc822; h@example.jp\n",
            "Final-Recipient: rfc822; i@example.jp\nAction: Failed\nStatus: 5.1.1\n (folded)\nDiagnostic-Code: X-Postfix;\n host said: 550\nRemote-MTA: DNS;\n mx.example.jp\n",
            "Final-Recipient: rfc822; j@example.jp\nAction:\n failed\nDiagnostic-Code: SMTP; Boîte PLEINE\nX-PowerMTA-BounceCategory: quota-\n issues\nStatus: 5.2.2 (x)\n",
            "Final-Recipient: rfc822; k@example.jp\nDiagnostic-Code: smtp;\nStatus:\nAction: \n",
            "X-PowerMTA-BounceCategory: a\nX-PowerMTA-BounceCategoryX: b\nFinal-Recipient: rfc822; l@example.jp\n",
            "Final-Recipient: rfc822; m@example.jp\nX-PowerMTA-BounceCategory:\nx-powermta-bouncecategory:c\n:\nAction",
            "",
        ] {
            let want = format!("{:?}", parse_reference(text));
            assert_eq!(format!("{:?}", parse(text)), want, "{text:?}");
        }
    }

    #[test]
    fn keep_borrows_only_slices_of_the_value() {
        let text = "abc def";
        let v = Cow::Borrowed(text);
        assert!(matches!(keep(&v, &text[4..]), Cow::Borrowed("def")));
        assert!(matches!(keep(&v, &text[7..]), Cow::Borrowed("")));
        assert!(matches!(keep(&v, "def"), Cow::Owned(s) if s == "def"));
        let owned: Cow<'_, str> = Cow::Owned(text.to_string());
        assert!(matches!(keep(&owned, &owned[4..]), Cow::Owned(s) if s == "def"));
        assert!(matches!(keep_lower(&v, "DEF"), Cow::Owned(s) if s == "def"));
    }

    #[test]
    fn two_recipient_groups_are_split() {
        let text = "Reporting-MTA: dns; mx.example.jp\n\nFinal-Recipient: rfc822; a@example.jp\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <a@example.jp>:\n    User unknown\n\nFinal-Recipient: rfc822; b@example.jp\nAction: delayed\nStatus: 4.4.7\n";
        let r = parse(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].address(), Some("a@example.jp"));
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("550 5.1.1 <a@example.jp>: User unknown")
        );
        assert_eq!(r[1].action.as_deref(), Some("delayed"));
    }
}
