//! Reason tables: which enhanced status codes and which diagnostic phrases
//! mean which [`Reason`], and the order in which they are tried.
//!
//! The phrase lists are data, meant to be read and extended: each entry is a
//! lowercase substring of a server's diagnostic text; `*` inside an entry
//! means "anything in between, on the same text" (e.g. `"user * does not
//! exist"`). They describe how MTAs and providers phrase failures in the
//! wild; many were first collected by the Sisimai project (BSD-2-Clause),
//! whose reason vocabulary SPEC section 3 adopts. Never add a phrase that
//! only names one sample's host or address.

use std::sync::LazyLock;

use super::Reason;

/// Maps an enhanced status code (RFC 3463, plus the registry's later
/// additions) to the reason it denotes on its own. `None` for codes too
/// generic to say anything (`x.0.0`, `x.5.0` ...).
pub fn status_reason(status: &str) -> Option<Reason> {
    use Reason::*;
    let mut it = status.split('.');
    let class = it.next()?;
    let subject = it.next()?;
    let detail = it.next()?;
    let r = match (subject, detail) {
        ("1", "0") if class == "5" => UserUnknown,
        ("1", "1") | ("1", "3") if class == "5" => UserUnknown,
        ("1", "2") if class == "5" => HostUnknown,
        ("1", "4") if class == "5" => Filtered,
        ("1", "6") => HasMoved,
        ("1", "7") | ("1", "8") => Rejected,
        ("1", "9") => SystemError,
        ("1", "10") => NotAccept,
        ("2", "0") | ("2", "4") if class == "5" => Filtered,
        // Mailbox disabled: in practice servers send it for unknown users.
        ("2", "1") => {
            if class == "5" {
                Filtered
            } else {
                Suspend
            }
        }
        ("2", "2") => MailboxFull,
        ("2", "3") => ExceedLimit,
        // 4.3.0 is too generic to say more than "try again later".
        ("3", "0") if class == "5" => SystemError,
        ("3", "3") | ("3", "5") => SystemError,
        ("3", "1") => SystemFull,
        ("3", "2") => NotAccept,
        ("3", "4") => MesgTooBig,
        ("4", "0") if class == "5" => NetworkError,
        ("4", "1") if class == "4" => Expired,
        ("4", "2") | ("4", "6") => NetworkError,
        ("4", "4") => {
            if class == "5" {
                HostUnknown
            } else {
                NetworkError
            }
        }
        ("4", "3") => SystemError,
        ("4", "5") => SystemFull,
        ("4", "7") => Expired,
        ("5", "3") => TooManyConn,
        ("5", "4") | ("5", "5") => SystemError,
        ("5", "6") => SecurityError,
        ("6", _) => ContentError,
        ("7", "1") | ("7", "2") if class == "4" => Blocked,
        ("7", "13") => Suspend,
        ("7", "16") => MesgTooBig,
        ("7", "17") | ("7", "18") => HasMoved,
        ("7", "23") | ("7", "26") => AuthFailure,
        ("7", "25") => RequirePtr,
        ("7", "27") => NotAccept,
        ("7", "28") => Speeding,
        ("7", _) => SecurityError,
        _ => return None,
    };
    Some(r)
}

/// Phrases per reason. Matching is on lowercased text with whitespace
/// runs collapsed to one space.
pub const PHRASES: &[(Reason, &[&str])] = &[
    (
        Reason::MailboxFull,
        &[
            "account is exceeding their quota",
            "account is over quota",
            "account is temporarily over quota",
            "boite du destinataire pleine",
            "delivery failed: over quota",
            "disc quota exceeded",
            "disk quota exceeded",
            "does not have enough space",
            "exceeded storage allocation",
            "exceeding its mailbox quota",
            "full mailbox",
            "is over disk quota",
            "is over quota",
            "mail quota exceeded",
            "mailbox exceeded the local limit",
            "mailbox full",
            "mailbox has exceeded",
            "mailbox is full",
            "mailbox over quota",
            "mailbox quota usage exceeded",
            "mailbox size limit exceeded",
            "maildir over quota",
            "maildir delivery failed: userdisk quota",
            "maildir delivery failed: domaindisk quota",
            "mailfolder is full",
            "not enough storage space in",
            "over the allowed quota",
            "quota exceeded",
            "quota violation for",
            "recipient reached disk quota",
            "mailbox would exceed maximum allowed storage",
            "the user's space has been used up",
            "is over quota temporarily",
            "too much mail data",
            "user has exceeded quota",
            "user has too many messages on the server",
            "user is over quota",
            "user is over the quota",
            "user over quota",
            "would be over the allowed quota",
            "out of storage space",
            "insufficient system storage",
            "inbox is full",
            "exceeded their storage quota",
            "mailbox is over capacity",
        ],
    ),
    (
        Reason::MesgTooBig,
        &[
            "exceeded maximum inbound message size",
            "line limit exceeded",
            "max message size exceeded",
            "message file too big",
            "message length exceeds administrative limit",
            "message size exceeds fixed limit",
            "message size exceeds fixed maximum message size",
            "message size exceeds maximum value",
            "message size exceeds the maximum",
            "message too big",
            "message too large for this",
            "size limit",
            "taille limite du message atteinte",
            "message is too large",
            "message exceeds maximum size",
            "exceeds the size limit",
        ],
    ),
    (
        Reason::ExceedLimit,
        &[
            "message header size exceeds limit",
            "message too large",
            "message exceeded the local limit",
        ],
    ),
    (
        Reason::Suspend,
        &[
            " is currently suspended",
            " temporary locked",
            "boite du destinataire archivee",
            "email account that you tried to reach is disabled",
            "email account that you tried to reach is inactive",
            "has been suspended",
            "invalid/inactive user",
            "is a deactivated mailbox",
            "is unavailable: user is terminated",
            "mailbox currently suspended",
            "mailbox disabled",
            "mailbox is frozen",
            "mailbox unavailable or access denied",
            "recipient rejected: temporarily inactive",
            "recipient suspend the service",
            "this account has been disabled or discontinued",
            "this account has been temporarily suspended",
            "this mailbox is disabled",
            "account is disabled",
            "user suspended",
            "vdelivermail: account is locked email bounced",
            "account disabled",
            "account has been disabled",
            "account is disabled",
            "account is inactive",
            "the email account that you tried to reach is disabled",
        ],
    ),
    (
        Reason::HasMoved,
        &[
            " has been replaced by ",
            "recipient no longer on server",
            "user has moved",
            "address has changed",
        ],
    ),
    (
        Reason::NoRelaying,
        &[
            "as a relay",
            "insecure mail relay",
            "is not permitted to relay through this server without authentication",
            "mail server requires authentication when attempting to send to a non-local e-mail address",
            "not a gateway",
            "not allowed to relay through this machine",
            "not an open relay, so get lost",
            "not local host",
            "relay access denied",
            "relay denied",
            "relaying mail to ",
            "relay not permitted",
            "relaying denied",
            "relaying is prohibited",
            "that domain isn't in my list of allowed rcpthost",
            "this system is not configured to relay mail",
            "unable to relay for",
            "we don't handle mail for",
            "relay prohibited",
            "unable to relay",
        ],
    ),
    (
        Reason::AuthFailure,
        &[
            "does not have authentication information or fails to pass",
            "//spf.pobox.com",
            "bad spf records for",
            "dmarc policy",
            "dmarc check failed",
            "please inspect your spf settings",
            "sender policy framework (spf) fail",
            "sender policy framework violation",
            "spf (sender policy framework) domain authentication fail",
            "spf check: fail",
            "spf validation failed",
            "is not allowed to send mail.*_401",
            "is not allowed to send from <* per it's spf record",
            "dkim signature verification failed",
            "unauthenticated email from",
            "authentication failed; spf",
            "sender is not authorized by spf",
            "not authorized by domain",
            "dmarc authentication",
        ],
    ),
    (
        Reason::UserUnknown,
        &[
            "not listed in public name & address book",
            "not listed in domino directory",
            "the recipient name is not recognized",
            "address couldn't be found",
            "address could not be found",
            "invalid final delivery userid",
            "user not found",
            "#5.1.1 bad address",
            "550 address invalid",
            "5.1.0 address rejected.",
            "address does not exist",
            "address not present in directory",
            "address unknown",
            "can't accept user",
            "does not exist.",
            "destination addresses were unknown",
            "destination server rejected recipients",
            "email address does not exist",
            "email address could not be found",
            "invalid address",
            "invalid mailbox",
            "invalid recipient",
            "is not a known user",
            "is not a valid mailbox",
            "is not an active address at this host",
            "mailbox does not exist",
            "mailbox invalid",
            "mailbox is inactive",
            "mailbox is unavailable",
            "mailbox not present",
            "mailbox not found",
            "mailbox unavaiable",
            "nessun utente simile in questo indirizzo",
            "no account by that name here",
            "no existe dicha persona",
            "no existe ese usuario ",
            "no mail box available for this user",
            "no mailbox by that name is currently available",
            "no mailbox found",
            "no such address here",
            "no such mailbox",
            "no such person at this address",
            "no such recipient",
            "no such user",
            "no thank you rejected: account unavailable",
            "no valid recipients, bye",
            "not a valid recipient",
            "not a valid user here",
            "not a local address",
            "recipient address rejected: access denied",
            "recipient address rejected: invalid user",
            "recipient address rejected: invalid-recipient",
            "recipient address rejected: unknown user",
            "recipient address rejected: userunknown",
            "recipient does not exist",
            "recipient is not accepted",
            "recipient is not local",
            "recipient not exist",
            "recipient not found",
            "recipient not ok",
            "recipient refuses to accept your mail",
            "recipient unknown",
            "requested action not taken: mailbox unavailable",
            "resolver.adr.recipient notfound",
            "resolver.adr.recipientnotfound",
            "sorry, user unknown",
            "sorry, badrcptto",
            "sorry, no mailbox here by that name",
            "sorry, your envelope recipient has been denied",
            "that domain or user isn't in my list of allowed rcpthosts",
            "the email account that you tried to reach does not exist",
            "the following recipients was undeliverable",
            "the user's email name is not found",
            "there is no one at this address",
            "this address no longer accepts mail",
            "this email address is wrong or no longer valid",
            "this recipient is in my badrecipientto list",
            "this recipient is not in my validrcptto list",
            "this spectator does not exist",
            "unknown mailbox",
            "unknown recipient",
            "unknown user",
            "user does not exist",
            "user missing home directory",
            "user not active",
            "user not exist",
            "user not known",
            "user unknown",
            "utilisateur inconnu",
            "vdeliver: invalid or unknown virtual user",
            "your envelope recipient is in my badrcptto list",
            "account * does not exist at the organization",
            "<*> not found",
            "bad*recipient",
            "mailbox * does not exist",
            "no * in name directory",
            "non*existent user",
            "rcpt <* does not exist",
            "recipient * was not found in",
            "recipient address rejected: user * does not exist",
            "recipient address rejected: user unknown in * table",
            "this user doesn't have a * account",
            "unknown e*mail address",
            "unknown local*part",
            "user * was not found",
            "user * does not exist",
            "user (*) unknown",
            "no such local user",
            "addressee unknown",
            "not our customer",
        ],
    ),
    (
        Reason::Filtered,
        &[
            "because the recipient is only accepting mail from specific email addresses",
            "bounced address",
            "due to extended inactivity new mail is not currently being accepted for this mailbox",
            "has restricted sms e-mail",
            "is not accepting any mail",
            "message rejected due to user rules",
            "not found recipient account",
            "refused due to recipient preferences",
            "resolver.rst.notauthorized",
            "this account is protected by",
            "user reject",
            "refuse to receive mail",
            "you have been blocked by the recipient",
            "sender is not allowed by the recipient",
        ],
    ),
    (
        Reason::RequirePtr,
        &[
            "access denied. ip name lookup failed",
            "all mail servers must have a ptr record with a valid reverse dns entry",
            "bad dns ptr resource record",
            "cannot find your hostname",
            "fix reverse dns for ",
            "ips with missing ptr records",
            "no ptr record found",
            "please get a custom reverse dns name from your isp for your host",
            "ptr record setup",
            "reverse dns failed",
            "reverse dns required",
            "sender ip reverse lookup rejected",
            "does not have a ptr record",
            "this system will not accept messages from servers/devices with no reverse dns",
            "unresolvable relay host name",
            "we do not accept mail from hosts with dynamic ip or generic dns ptr-records",
            "domain * mismatches client ip",
            "dns lookup failure: * try again later",
            "reverse dns lookup for host * failed permanently",
            "server access * forbidden by invalid rdns record of your mail server",
            "service permits * unverifyable sending ips",
            "no reverse dns",
            "reverse dns lookup failed",
            "does not resolve to a hostname",
        ],
    ),
    (
        Reason::NotCompliantRfc,
        &[
            "addresses in from: header",
            "this message is not rfc 5322 compliant",
            "not rfc 5322 compliant",
            "duplicate header",
            "multiple addresses in from",
            "message contains bare lf",
            "bare linefeeds",
            "rfc 5322 compliance",
            "is not rfc compliant",
            "rfc5322",
        ],
    ),
    (
        Reason::BadReputation,
        &[
            "temporarily deferred due to unexpected volume or user complaints",
            "has been temporarily rate limited due to ip reputation",
            "likely unsolicited mail",
            "low reputation of the sending",
            "poor reputation",
            "sender reputation",
            "ip reputation",
            "domain reputation",
            "reputation of the sending",
            "reputation is too low",
        ],
    ),
    (
        Reason::Rejected,
        &[
            "can't determine purported responsible address",
            "5.1.0 address rejected",
            "sender ip address rejected",
            "access denied (in reply to mail from command)",
            "access denied (sender blacklisted)",
            "administrative prohibition",
            "batv failed to verify",
            "batv validation failure",
            "backscatter protection detected an invalid or expired email address",
            "because the sender isn't on the recipient's list of senders to accept mail from",
            "bogus mail from",
            "connections not accepted from servers without a valid sender domain",
            "denied [bouncedeny]",
            "denied by secumail valid-address-filter",
            "delivery not authorized, message refused",
            "does not exist e2110",
            "domain of sender address ",
            "email address is on senderfilterconfig list",
            "emetteur invalide",
            "empty envelope senders not allowed",
            "envelope blocked",
            "error: no third-party dsns",
            "from: domain is invalid. please provide a valid from:",
            "fully qualified email address required",
            "invalid domain, see <url:",
            "invalid sender",
            "is not a registered gateway user",
            "mail from not owned by user",
            "message rejected: email address is not verified",
            "mx records for ",
            "null sender is not allowed",
            "recipient addresses rejected : access denied",
            "recipient not accepted. (batv: no tag",
            "returned mail not accepted here",
            "rfc 1035 violation: recursive cname records for",
            "rule imposed mailbox access for",
            "sender address has been blacklisted",
            "sender email address rejected",
            "sender is in my black list",
            "sender is spammer",
            "sender not pre-approved",
            "sender rejected",
            "sender domain is empty",
            "sender verify failed",
            "syntax error: empty email address",
            "the message has been rejected by batv defense",
            "this server does not accept mail from",
            "transaction failed unsigned dsn for",
            "unroutable sender address",
            "you are not allowed to post to this mailing list",
            "you are sending to/from an address that has been blacklisted",
            "your access to submit messages to this e-mail system has been rejected",
            "sender address rejected",
            "sender domain must exist",
            "domain of sender address * does not exist",
            "sender was rejected",
        ],
    ),
    (
        Reason::HostUnknown,
        &[
            "dns lookup failure: host",
            "domain does not exist",
            "domain is not reachable",
            "domain must exist",
            "host or domain name not found",
            "host unknown",
            "host unreachable",
            "mail domain mentioned in email address is unknown",
            "name or service not known",
            "no such domain",
            "recipient address rejected: unknown domain name",
            "recipient domain must exist",
            "the account or domain may not exist",
            "unknown host",
            "unroutable address",
            "unrouteable address",
            "553 * does not exist",
            "domain not found",
            "unknown domain",
            "no mx record",
            "dns records for the destination computer could not be found",
        ],
    ),
    (
        Reason::SpamDetected,
        &[
            "the mail server detected your message as spam and has prevented delivery",
            "554 5.7.0 reject, id=",
            "appears to be unsolicited",
            "blacklisted url in message",
            "block for spam",
            "blocked by policy: no spam please",
            "blocked by spamassassin",
            "bulk email",
            "considered unsolicited bulk e-mail (spam) by our mail filters",
            "content filter rejection",
            "denied due to spam list",
            "high probability of spam",
            "www.spamhaus.org",
            "mail appears to be unsolicited",
            "mail content denied",
            "may consider spam",
            "message considered as spam or virus",
            "message content rejected",
            "message filtered",
            "message looks like spam",
            "message refused by mailmarshal spamprofiler",
            "message rejected as spam",
            "message rejected because of unacceptable content",
            "message rejected due to suspected spam content",
            "our email server thinks this email is spam",
            "probability of being spam",
            "our system has detected that this message is",
            "probable spam",
            "reject bulk.advertising",
            "rejected: spamassassin score",
            "rejected due to spam",
            "rejecting banned content",
            "rejecting mail content",
            "related to content with spam-like characteristics",
            "sending address not accepted due to spam filter",
            "spam blocked",
            "spam check",
            "spam content matched",
            "spam detected",
            "spam email",
            "spam message rejected",
            "spam not accepted",
            "spam refused",
            "spam rejection",
            "spam reporting address",
            "spam score",
            "spambouncer identified spam",
            "spamming not allowed",
            "too much spam",
            "the message has been rejected by spam filtering engine",
            "the message was rejected due to classification as bulk mail",
            "the content of this message looked like spam",
            "cannot be forwarded because it was detected as spam",
            "is classified as spam and is rejected",
            "this message appears to be spam",
            "this message has been identified as spam",
            "this message has been scored as spam",
            "this message was classified as spam",
            "this message was rejected by recurrent pattern detection system",
            "transaction failed spam message not queued",
            "we dont accept spam",
            "you're using a mass mailer",
            "your email appears similar to spam",
            "your email breaches local uribl policy",
            "your email had spam-like",
            "your email is considered spam",
            "your email is probably spam",
            "your email was detected as spam",
            "your message has been temporarily blocked by our filter",
            "rejected because it appears to be spam",
            "your message has triggered a spam block",
            "your message may contain the spam contents",
            "your message failed several antispam checks",
            "identified as spam",
            "detected as spam",
            "message is spam",
            "as spam",
            "unsolicited mail",
        ],
    ),
    (
        Reason::Speeding,
        &[
            "receiving mail at a rate that",
            "has sent to too many recipients this hour",
            "mail sent from your ip address has been temporarily rate limited",
            "please slow down",
            "rate limited",
            "sending rate",
        ],
    ),
    (
        Reason::TooManyConn,
        &[
            "frequency limited",
            "all available ips are at maximum connection limit",
            "connection rate limit exceeded",
            "exceeds per-domain connection limit for",
            "has exceeded the max emails per hour",
            "throttling failure: daily message quota exceeded",
            "throttling failure: maximum sending rate exceeded",
            "too many connections",
            "too many concurrent smtp connections",
            "too many errors from your ip",
            "too many recipients",
            "too many smtp sessions for this host",
            "trop de connexions",
            "we have already made numerous attempts to deliver this message",
            "too many simultaneous connections",
        ],
    ),
    (
        Reason::Blocked,
        &[
            "spamhaus.org/query/bl",
            " said: 550 blocked",
            "//www.spamcop.net/bl.",
            "bad sender ip address",
            "banned sending ip",
            "blacklisted by",
            "blocked using ",
            "blocked - see http",
            "dnsbl:attrbl",
            "client host rejected: abus detecte",
            "client host rejected: may not be mail exchanger",
            "client host rejected: was not authenticated",
            "confirm this mail server",
            "connection dropped",
            "connection refused by",
            "connection reset by peer",
            "connection was dropped by remote host",
            "connections not accepted from ip addresses on spamhaus xbl",
            "currently sending spam see: ",
            "domain does not exist:",
            "dynamic/zombied/spam ips blocked",
            "error: no valid recipients from ",
            "esmtp not accepting connections",
            "extreme bad ip profile",
            "go away",
            "helo command rejected:",
            "host network not allowed",
            "hosts with dynamic ip",
            "invalid ip for sending mail of domain",
            "is in a black list",
            "is not allowed to send mail from",
            "no access from mail server",
            "no matches to nameserver query",
            "not currently accepting mail from your ip",
            "part of their network is on our block list",
            "please use the smtp server of your isp",
            "refused - see http",
            "rejected - multi-blacklist",
            "rejected because the sending mta or the sender has not passed validation",
            "rejecting open proxy",
            "server access forbidden by your ip ",
            "service not available, closing transmission channel",
            "smtp error from remote mail server after initial connection:",
            "sorry, that domain isn't in my list of allowed rcpthosts",
            "sorry, your remotehost looks suspiciously like spammer",
            "to submit messages to this e-mail system has been rejected",
            "too many spams from your ip",
            "too many unwanted messages have been sent from the following ip address above",
            "was blocked by ",
            "we do not accept mail from dynamic ips",
            "you are not allowed to connect",
            "you are sending spam",
            "your ip address is listed in the rbl",
            "your network is temporary blacklisted",
            "your server requires confirmation",
            "access from ip address * blocked",
            "client host * blocked using",
            "because the ip is in spamhaus's list",
            "dnsbl:rbl * >_is_blocked",
            "email blocked by * .barracudacentral.org",
            "email blocked by * spamhaus",
            "host * refused to talk to me: * blocked",
            "is blocked by earthlink",
            "is in an * rbl on ",
            "mail server at * is blocked",
            "mail from * refused:",
            "message from * rejected based on blacklist",
            "messages from * temporarily deferred due to user complaints",
            "server ip * listed as abusive",
            "is blocked by rbl",
            "the domain * is blacklisted",
            "the ip* is blacklisted",
        ],
    ),
];

/// Replies that name a missing user in so many words whatever the SMTP
/// stage, so they are not read as a content filter after DATA.
pub const CERTAIN_UNKNOWN: &[&str] = &[
    "delivery error: dd this user doesn't have",
    "adresse destinataire invalide",
    "user unknown in local recipient table",
    "user unknown in virtual mailbox table",
    "recipient not found by smtp address lookup",
    "the recipient name is not recognized",
    "because the address couldn't be found",
    "invalid final delivery userid",
    "not listed in public name & address book",
    "mail.local: unknown user",
    // Verizon's MMS gateway (vzwpix.com).
    "no valid recipients for this mm",
    "remote server returned unknown recipient",
];

/// Phrases tried only when the status code did not settle the reason
/// (see [`super::reason`]).
pub const SECOND_PHRASES: &[(Reason, &[&str])] = &[
    (
        Reason::PolicyViolation,
        &[
            "an illegal attachment on your message",
            "because the recipient is not accepting mail with ",
            "by non-member to a members-only list",
            "closed mailing list",
            "denied by policy",
            "email not accepted for policy reasons",
            "email rejected due to security policies",
            "header are not accepted",
            "header error",
            "local policy violation",
            "message bounced due to organizational settings",
            "message given low priority",
            "message not accepted for policy reasons",
            "message rejected due to local policy",
            "messages with multiple addresses",
            "rejected for policy reasons",
            "protocol violation",
            "the email address used to send your message is not subscribed to this group",
            "the message was rejected by organization policy",
            "this message was blocked because its content presents a potential",
            "we do not accept messages containing images or other attachments",
            "you have exceeded the allowable number of posts without solving a captcha",
            "you have exceeded the the allowable number of posts without solving a captcha",
            "policy violation",
            "violates policy",
            "policy rejection",
            "policy reasons",
        ],
    ),
    (
        Reason::VirusDetected,
        &[
            "it has a potentially executable attachment",
            "the message was rejected because it contains prohibited virus or spam content",
            "this form of attachment has been used by recent viruses or other malware",
            "virus detected",
            "your message was infected with a virus",
            "virus found",
            "contains a virus",
        ],
    ),
    (
        Reason::SecurityError,
        &[
            "smtp authentication",
            "authentication failed",
            "authentication required",
            "authentication turned on in your email client",
            "executable files are not allowed in compressed files",
            "insecure mail relay",
            "recipient address rejected: sender is not authenticated",
            "sorry, you don't authenticate or the domain isn't in my list of allowed rcpthosts",
            "tls required but not supported",
            "unauthenticated senders not allowed",
            "verification failure",
            "you are not authorized to send mail, authentication is required",
            "account not subscribed to ses",
            "authentication credentials invalid",
            "must issue a starttls command first",
        ],
    ),
    (
        Reason::SystemError,
        &[
            "aliasing/forwarding loop broken",
            "can't create user output file",
            "could not load drd for domain",
            // fml's loop alert: the list saw the same Message-ID twice.
            "duplicated message-id",
            "internal error reading data",
            "internal server error: operation now in progress",
            "interrupted system call",
            "it encountered an error while being processed",
            "it would create a mail loop",
            "local configuration error",
            "local error in processing",
            "loop was found in the mail exchanger",
            "loops back to myself",
            "queue file write error",
            "mail system configuration error",
            "remote server is misconfigured",
            "server configuration error",
            "service currently unavailable",
            "system config error",
            "temporary local problem",
            "timeout waiting for input",
            "transaction failed",
            "mail for * loops back to myself",
            // qmail-ldap's own failures.
            "automatic homedir creator crashed",
            "illegal value in ldap attribute",
            "ldap attribute is not given but mandatory",
            "timeout while performing search on ldap server",
            "too many results returned but needs to be unique",
            "error while executing qmail-forward",
            "temporary error in automatic homedir creation",
            "temporary failure in ldap lookup",
            "unable to contact ldap server",
            "unable to login into ldap server, bad credentials",
        ],
    ),
    (
        Reason::NotAccept,
        &[
            "doesn't receive email",
            "couldn't find a mail exchanger",
            "type=mx: malformed or unexpected name server reply",
            "no mx found for domain",
            "indicated no smtp service",
            "does not accept mail (nullmx)",
            "host/domain does not accept mail",
            "host does not accept mail",
            "name server: .: host not found",
            "no mx record found for domain=",
            "no route for current request",
            "smtp protocol returned a permanent error",
            "null mx",
        ],
    ),
    (
        Reason::NetworkError,
        &[
            "dns type 'mx' lookup of",
            "network error on destination",
            "dns query failed",
            "could not connect and send the mail to",
            "dns records for the destination computer could not be found",
            "hop count exceeded - possible mail loop",
            "host is unreachable",
            "host name lookup failure",
            "host not found, try again",
            "mail forwarding loop for ",
            "malformed name server reply",
            "malformed or unexpected name server reply",
            "maximum forwarding loop count exceeded",
            "message looping",
            "message probably in a routing loop",
            "no route to host",
            "too many hops",
            "unable to resolve route ",
            "unrouteable mail domain",
        ],
    ),
    (
        Reason::Expired,
        &[
            "was not delivered within",
            "remote host is not responding",
            "envelope expired",
            "could not deliver for the last",
            "did not accept our requests to connect",
            "message expired",
            "connection timed out",
            "could not find a gateway for",
            "delivery attempts will continue to be",
            "delivery time expired",
            "failed to deliver to domain ",
            "giving up on",
            "have been failing for a long time",
            "has been delayed",
            "it has not been collected after",
            "message expired after sitting in queue for",
            "message expired, connection refulsed",
            "message timed out",
            "retry time not reached for any host after a long failure period",
            "server did not respond",
            "this message has been in the queue too long",
            "unable to deliver message after multiple retries",
            "was not reachable within the allowed queue period",
            "your message could not be delivered for more than",
            "retry timeout exceeded",
            "queue too long",
        ],
    ),
    (
        Reason::ContentError,
        &[
            "header size exceeds maximum permitted",
            "improper use of 8-bit data in message header",
            "message header size, or recipient list, exceeds policy limit",
            "message mime complexity exceeds the policy maximum",
            "routing loop detected -- too many received: headers",
            "this message contain invalid mime headers",
            "this message contain improperly-formatted binary content",
            "this message contain text that uses unnecessary base64 encoding",
        ],
    ),
    (
        Reason::SystemFull,
        &[
            "mail system full",
            "requested mail action aborted: exceeded storage allocation",
        ],
    ),
    (
        // Exim's address parser (Sisimai Lhost::Exim).
        Reason::SyntaxError,
        &[
            "malformed address:",
            "angle-brackets nested too deep",
            "domain missing in source-routed address",
        ],
    ),
    (
        Reason::MailerError,
        &[
            "pipe to |",
            "x-unix; ",
            "command died with status",
            "command output:",
            "procmail: ",
            "mail.local: ",
            "exit code",
        ],
    ),
];

/// Does `text` (lowercase, whitespace collapsed) contain `pattern`, where
/// `*` in the pattern is a gap?
///
/// Searched with `memmem::find`, which sets up less than `str::find`'s
/// two-way searcher does for each call (most callers try a phrase once on
/// a short text). The same leftmost match: a UTF-8 needle only matches
/// at a character boundary.
pub fn phrase_matches(text: &str, pattern: &str) -> bool {
    let mut rest = text.as_bytes();
    for piece in pattern.split('*') {
        match memchr::memmem::find(rest, piece.as_bytes()) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}

/// [`phrase_matches`] with the pattern's pieces (split at `*`) already
/// built into finders: each piece found after the one before it.
fn pieces_in_order(text: &[u8], finders: &[memchr::memmem::Finder<'_>]) -> bool {
    let mut rest = text;
    for finder in finders {
        match finder.find(rest) {
            Some(i) => rest = &rest[i + finder.needle().len()..],
            None => return false,
        }
    }
    true
}

/// Which reasons' phrases a text contains, per table.
#[derive(Debug, Default, Clone, Copy)]
pub struct Hits {
    first: u64,
    second: u64,
    certain: bool,
}

impl Hits {
    /// Did a [`PHRASES`] entry of `reason` match?
    pub fn first(&self, reason: Reason) -> bool {
        self.first & bit(reason) != 0
    }

    /// Did a [`SECOND_PHRASES`] entry of `reason` match?
    pub fn second(&self, reason: Reason) -> bool {
        self.second & bit(reason) != 0
    }

    /// Did a [`CERTAIN_UNKNOWN`] entry match?
    pub fn certain_unknown(&self) -> bool {
        self.certain
    }

    fn set(&mut self, table: u8, reason: Reason) {
        match table {
            0 => self.first |= bit(reason),
            1 => self.second |= bit(reason),
            _ => self.certain = true,
        }
    }
}

fn bit(reason: Reason) -> u64 {
    1 << Reason::ALL.iter().position(|r| *r == reason).unwrap_or(63)
}

/// Every phrase of the tables compiled into one [`PieceIndex`], so a text
/// is read once however long the tables grow.
struct Compiled {
    index: PieceIndex,
    patterns: Vec<Pattern>,
    /// piece id -> the patterns that look for it
    by_piece: Vec<Vec<usize>>,
    /// The patterns with a gap, at most 128 (a scan notes those it may
    /// have to check as bits of a `u128`).
    gapped: Vec<usize>,
    pieces: usize,
}

/// One phrase of a table, as [`Compiled`] looks for it.
struct Pattern {
    /// 0 first, 1 second, 2 certain.
    table: u8,
    reason: Reason,
    /// Has a `*` gap: the pieces only say it may match, [`phrase_matches`]
    /// decides. Then its place in [`Compiled::gapped`].
    gapped: Option<u8>,
    /// Of a gapped phrase, a finder for each piece in order: what
    /// [`phrase_matches`] does, without building a searcher per call
    /// (that cost more than the search itself on short texts).
    finders: Vec<memchr::memmem::Finder<'static>>,
    /// The pieces looked for (ids in the [`PieceIndex`]): all of them, or
    /// of a gapped phrase only those of [`LONG`] bytes when there are
    /// some. (A short piece such as `"<"` or `"no "` occurs in most
    /// texts; [`phrase_matches`] looks for it anyway.)
    ids: Vec<usize>,
}

/// The phrases of one scan: (table: 0 first, 1 second, 2 certain; the
/// reason and its phrases).
type Tables<'a> = &'a [(u8, &'a [(Reason, &'static [&'static str])])];

/// [`CERTAIN_UNKNOWN`] as a table of its own.
const CERTAIN: &[(Reason, &[&str])] = &[(Reason::UserUnknown, CERTAIN_UNKNOWN)];

impl Compiled {
    fn new(tables: Tables<'_>) -> Compiled {
        let mut pieces: Vec<&'static str> = Vec::new();
        let mut patterns = Vec::new();
        let mut gapped_list = Vec::new();
        for &(table, list) in tables {
            for (reason, list) in list {
                for phrase in *list {
                    let gapped = phrase.contains('*');
                    let all: Vec<&'static str> =
                        phrase.split('*').filter(|p| !p.is_empty()).collect();
                    let long = all.iter().any(|p| p.len() >= LONG);
                    let ids: Vec<usize> = all
                        .into_iter()
                        .filter(|p| !gapped || !long || p.len() >= LONG)
                        .map(|piece| match pieces.iter().position(|p| *p == piece) {
                            Some(i) => i,
                            None => {
                                pieces.push(piece);
                                pieces.len() - 1
                            }
                        })
                        .collect();
                    let gapped = gapped.then(|| {
                        let slot = gapped_list.len();
                        assert!(slot < 128, "more gapped phrases than a u128 has bits");
                        gapped_list.push(patterns.len());
                        slot as u8
                    });
                    let finders = match gapped {
                        Some(_) => phrase.split('*').map(memchr::memmem::Finder::new).collect(),
                        None => Vec::new(),
                    };
                    patterns.push(Pattern {
                        table,
                        reason: *reason,
                        gapped,
                        finders,
                        ids,
                    });
                }
            }
        }
        let mut by_piece: Vec<Vec<usize>> = vec![Vec::new(); pieces.len()];
        for (i, pattern) in patterns.iter().enumerate() {
            for &p in &pattern.ids {
                by_piece[p].push(i);
            }
        }
        Compiled {
            index: PieceIndex::new(&pieces),
            patterns,
            pieces: pieces.len(),
            by_piece,
            gapped: gapped_list,
        }
    }
}

/// Bytes of text that pick a bucket in a [`PieceIndex`].
const KEY: usize = 4;

/// Pieces at least this long are found through the buckets, reading one
/// text position in [`STRIDE`]; shorter ones are looked for one by one.
const LONG: usize = 7;

/// Every occurrence of a piece of [`LONG`] bytes covers a [`KEY`]-byte
/// window that starts at a multiple of this (see [`PieceIndex`]).
const STRIDE: usize = LONG - KEY + 1;

/// log2 of the number of buckets in a [`PieceIndex`]: a few thousand
/// keys leave most buckets empty, so most positions read are passed
/// over after one bit.
const BUCKET_BITS: u32 = 16;

/// Tells which of a set of literal pieces occur anywhere in a text: the
/// same answer as an Aho-Corasick overlapping search for every piece, for
/// a fraction of its cost on bounce texts. (Measured on a corpus run: an
/// automaton over the ~750 pieces spent about 50 instructions a byte
/// following transitions, a full DFA near 30 and more to build than all
/// the scans; this reads one position in [`STRIDE`] and builds in no
/// time.)
///
/// A piece of at least [`LONG`] bytes, wherever it occurs, has one window
/// of any run of [`STRIDE`] consecutive [`KEY`]-byte windows in it at a
/// text position that is a multiple of [`STRIDE`]. So each such piece is
/// filed under the hash of each window of one run (with the window's
/// offset in the piece), the run where the piece's words are least common
/// among all pieces (see [`PieceIndex::new`]), and
/// only those text positions are looked up: a bucket lists the pieces
/// that may cover the position, each is then compared where it would
/// start, first eight bytes in one word, then whole. (This is the
/// sampling idea of Wu and Manber's multi-pattern search.) Shorter
/// pieces, if a table has any (a gapped phrase's short pieces are not
/// looked for, see [`Pattern::ids`]), are looked for one by one with
/// `memmem`.
pub(super) struct PieceIndex {
    /// (piece id, finder) of the pieces shorter than [`LONG`].
    short: Vec<(usize, memchr::memmem::Finder<'static>)>,
    /// Bit `h` is set when bucket `h` lists a piece.
    occupied: Vec<u64>,
    /// Bucket `h` lists `entries[starts[h]..starts[h + 1]]`.
    starts: Vec<u32>,
    entries: Vec<Entry>,
}

/// One [`KEY`]-byte window of a piece of at least [`LONG`] bytes, in its
/// bucket.
struct Entry {
    /// Where the window starts in the piece.
    offset: usize,
    /// The piece's (up to) eight bytes from `offset`, as [`word`] reads
    /// a text...
    word: u64,
    /// ...and which of those bytes belong to the piece.
    mask: u64,
    /// The piece's last eight bytes (all of a seven-byte piece), as
    /// [`word`] reads them from `tail_at`: a second test before the whole
    /// comparison. (Pieces often share eight bytes, "recipient" or
    /// "mailbox", and differ after them; this tells most apart.)
    tail: u64,
    tail_at: usize,
    tail_mask: u64,
    piece: &'static [u8],
    id: usize,
}

/// The eight bytes of `text` from `at`, little-endian, zero past the end:
/// one word to compare a piece with.
fn word(text: &[u8], at: usize) -> u64 {
    match text.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().unwrap_or_default()),
        None => {
            let mut w = [0u8; 8];
            let rest = text.get(at..).unwrap_or_default();
            w[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(w)
        }
    }
}

/// The bucket of a [`KEY`]-byte window read little-endian as `key`
/// (Fibonacci hashing: multiply, keep the top bits).
fn bucket(key: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B1) >> (32 - BUCKET_BITS)) as usize
}

/// The [`KEY`] bytes of `text` from `at`, little-endian.
fn key(text: &[u8], at: usize) -> Option<u32> {
    let w = text.get(at..at + KEY)?;
    Some(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

impl PieceIndex {
    pub(super) fn new(pieces: &[&'static str]) -> PieceIndex {
        let mut short = Vec::new();
        let mut filed: Vec<(usize, Entry)> = Vec::new();
        // How many windows of all the pieces fall in each bucket: a
        // window shared by many pieces ("mail", "messa", "recip") is
        // common in bounce text too, and its bucket long. Each piece is
        // filed under the run of `STRIDE` windows with the least such
        // count (any run will do, see above): fewer positions read lead
        // anywhere, and fewer entries are tried at those that do.
        let mut shared = vec![0u32; 1 << BUCKET_BITS];
        for piece in pieces.iter().map(|p| p.as_bytes()) {
            for at in 0..piece.len().saturating_sub(KEY - 1) {
                shared[bucket(key(piece, at).unwrap_or_default())] += 1;
            }
        }
        for (id, piece) in pieces.iter().enumerate() {
            let piece = piece.as_bytes();
            if piece.len() < LONG {
                short.push((id, memchr::memmem::Finder::new(piece)));
                continue;
            }
            let run_cost = |from: usize| -> u32 {
                (from..from + STRIDE)
                    .map(|at| shared[bucket(key(piece, at).unwrap_or_default())])
                    .sum()
            };
            // (The first of the cheapest runs; every run's last window
            // ends inside the piece.)
            let first = (0..=piece.len() - LONG)
                .min_by_key(|&from| run_cost(from))
                .unwrap_or(0);
            let tail_at = piece.len().saturating_sub(8);
            for offset in first..first + STRIDE {
                let Some(k) = key(piece, offset) else { break };
                let entry = Entry {
                    offset,
                    word: word(piece, offset),
                    mask: u64::MAX >> (8 * (8 - (piece.len() - offset).min(8))),
                    tail: word(piece, tail_at),
                    tail_at,
                    tail_mask: u64::MAX >> (8 * (8 - (piece.len() - tail_at))),
                    piece,
                    id,
                };
                filed.push((bucket(k), entry));
            }
        }
        filed.sort_by_key(|(b, e)| (*b, e.id, e.offset));
        let mut starts = vec![0u32; (1 << BUCKET_BITS) + 1];
        let mut occupied = vec![0u64; (1 << BUCKET_BITS) / 64];
        for (b, _) in &filed {
            starts[b + 1] += 1;
            occupied[b / 64] |= 1 << (b % 64);
        }
        for h in 1..starts.len() {
            starts[h] += starts[h - 1];
        }
        PieceIndex {
            short,
            occupied,
            starts,
            entries: filed.into_iter().map(|(_, e)| e).collect(),
        }
    }

    /// Sets `found[id]` for each piece (by its place in the list given to
    /// [`PieceIndex::new`]) that occurs in `text`, and calls `new(id)` the
    /// first time it does.
    pub(super) fn find_all(&self, text: &[u8], found: &mut [bool], mut new: impl FnMut(usize)) {
        for (id, finder) in &self.short {
            if finder.find(text).is_some() && !std::mem::replace(&mut found[*id], true) {
                new(*id);
            }
        }
        self.find_long(text, found, new);
    }

    /// [`PieceIndex::find_all`] for the pieces of at least [`LONG`] bytes.
    fn find_long(&self, text: &[u8], found: &mut [bool], mut new: impl FnMut(usize)) {
        let mut next = 0;
        while let Some((at, h)) = self.next_occupied(text, next) {
            let here = word(text, at);
            let (from, to) = (self.starts[h] as usize, self.starts[h + 1] as usize);
            for e in &self.entries[from..to] {
                // Eight bytes decide most entries; then the whole piece.
                if here & e.mask != e.word || found[e.id] {
                    continue;
                }
                let Some(start) = at.checked_sub(e.offset) else {
                    continue;
                };
                // (The text's bytes from `start` on hold the piece's
                // length before its last word is read.)
                if text.len() - start >= e.piece.len()
                    && word(text, start + e.tail_at) & e.tail_mask == e.tail
                    && text[start..].starts_with(e.piece)
                {
                    found[e.id] = true;
                    new(e.id);
                }
            }
            next = at + STRIDE;
        }
    }

    /// The first piece (by its place in the list given to
    /// [`PieceIndex::new`]) that occurs in `text`. The long pieces are
    /// found in one pass first; a short piece is then only looked for
    /// when it comes before all of those found (a `memmem` pass each).
    /// `found` (one flag a piece, all unset) is left with the long ones.
    pub(super) fn first_found(&self, text: &[u8], found: &mut [bool]) -> Option<usize> {
        self.find_long(text, found, |_| {});
        let long = found.iter().position(|&f| f);
        // (`short` is in list order: the first found is the first.)
        let short = self
            .short
            .iter()
            .take_while(|(id, _)| long.is_none_or(|l| *id < l))
            .find(|(_, finder)| finder.find(text).is_some());
        short.map(|(id, _)| *id).or(long)
    }

    /// The first position read from `at` on (a multiple of [`STRIDE`])
    /// whose bucket lists a piece, and that bucket. Most positions are
    /// passed over here, in a loop of its own that keeps what it needs in
    /// registers (inside the whole search it reloaded them from the stack
    /// at every position).
    #[inline(never)]
    fn next_occupied(&self, text: &[u8], mut at: usize) -> Option<(usize, usize)> {
        // (As an array, a bucket's word is read without a bounds check;
        // `new` makes it exactly this long.)
        let occupied: &[u64; (1 << BUCKET_BITS) / 64] = self.occupied.as_slice().try_into().ok()?;
        while let Some(k) = key(text, at) {
            let h = bucket(k);
            if occupied[h / 64] & (1 << (h % 64)) != 0 {
                return Some((at, h));
            }
            at += STRIDE;
        }
        None
    }
}

/// Every phrase of the three tables.
const ALL_TABLES: Tables<'static> = &[(0, PHRASES), (1, SECOND_PHRASES), (2, CERTAIN)];

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| Compiled::new(ALL_TABLES));

/// [`PHRASES`] of `suspend` and [`CERTAIN_UNKNOWN`]: all that a bounce's
/// whole text is scanned for (see [`scan_context`]). Fewer pieces, fewer
/// positions where one may start.
static CONTEXT: LazyLock<Compiled> = LazyLock::new(|| {
    let suspend: Vec<(Reason, &'static [&'static str])> = PHRASES
        .iter()
        .filter(|(r, _)| *r == Reason::Suspend)
        .copied()
        .collect();
    Compiled::new(&[(0, &suspend), (2, CERTAIN)])
});

/// Builds both indexes now rather than at first use.
pub(super) fn prepare() {
    LazyLock::force(&COMPILED);
    LazyLock::force(&CONTEXT);
}

/// Finds which reasons' phrases occur in `text` (lowercase, whitespace
/// collapsed) in one pass.
pub fn scan(text: &str) -> Hits {
    scan_with(&COMPILED, text)
}

/// [`scan`] that only answers [`Hits::first`] for `suspend` and
/// [`Hits::certain_unknown`] (the rest is unset): for long texts.
pub fn scan_context(text: &str) -> Hits {
    let mut hits = scan_with(&CONTEXT, text);
    hits.first &= bit(Reason::Suspend);
    hits.second = 0;
    hits
}

/// Pieces whose found flags fit on the stack (the full tables have some
/// 750): a scan then allocates nothing unless a gapped phrase may match.
const FOUND_ON_STACK: usize = 1024;

fn scan_with(c: &Compiled, text: &str) -> Hits {
    let mut hits = Hits::default();
    let mut on_stack = [false; FOUND_ON_STACK];
    let mut on_heap = Vec::new();
    let found: &mut [bool] = match on_stack.get_mut(..c.pieces) {
        Some(found) => found,
        None => {
            on_heap.resize(c.pieces, false);
            &mut on_heap
        }
    };
    // The gapped patterns a found piece points at, as bits by their place
    // in `c.gapped` (a set on the stack, not a list to allocate).
    let mut gapped: u128 = 0;
    c.index.find_all(text.as_bytes(), found, |piece| {
        for &i in &c.by_piece[piece] {
            let p = &c.patterns[i];
            match p.gapped {
                None => hits.set(p.table, p.reason),
                Some(slot) => gapped |= 1 << slot,
            }
        }
    });
    while gapped != 0 {
        let slot = gapped.trailing_zeros() as usize;
        gapped &= gapped - 1;
        let p = &c.patterns[c.gapped[slot]];
        if p.ids.iter().all(|&id| found[id]) && pieces_in_order(text.as_bytes(), &p.finders) {
            hits.set(p.table, p.reason);
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_pattern_matches_in_order_only() {
        assert!(phrase_matches(
            "user kijitora does not exist here",
            "user * does not exist"
        ));
        assert!(!phrase_matches(
            "does not exist user",
            "user * does not exist"
        ));
    }

    #[test]
    fn phrase_matches_agrees_with_str_find() {
        let by_str = |text: &str, pattern: &str| {
            let mut rest = text;
            for piece in pattern.split('*') {
                match rest.find(piece) {
                    Some(i) => rest = &rest[i + piece.len()..],
                    None => return false,
                }
            }
            true
        };
        let texts = [
            "",
            "a",
            "boîte pleine, boîte vide",
            "user é does not exist",
            "aaab aab",
            "日本語 user 日本 does not exist",
        ];
        let patterns = [
            "",
            "*",
            "**",
            "a*",
            "*b",
            "aab",
            "a*a*b",
            "boîte*vide",
            "î",
            "é*exist",
            "本*本",
            "x",
            "user * does not exist",
            "aaab aab*",
        ];
        for t in texts {
            for p in patterns {
                assert_eq!(phrase_matches(t, p), by_str(t, p), "{t:?} {p:?}");
            }
        }
    }

    #[test]
    fn first_found_is_the_first_piece_contained() {
        let pieces = ["xy", "abcdefgh", "zz", "qrstuvwx", "ab"];
        let index = PieceIndex::new(&pieces);
        for text in [
            "",
            "xy",
            "--abcdefgh",
            "zz qrstuvwx",
            "qrstuvwx ab",
            "ab abcdefg",
            "zzabcdefghxy",
            "qrstuvwxab zz",
        ] {
            let mut found = [false; 5];
            let first = index.first_found(text.as_bytes(), &mut found);
            assert_eq!(
                first,
                pieces.iter().position(|p| text.contains(p)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn find_all_finds_the_pieces_contained() {
        // Pieces that share common words, so that their windows are
        // chosen away from those words, at every alignment in the text.
        let pieces = [
            "message rejected",
            "message too big",
            "mailbox full",
            "no mailbox here",
            "recipient unknown",
            "unknown recipient",
            "mailbox",
            "zz",
        ];
        let index = PieceIndex::new(&pieces);
        let parts = [
            " ",
            "message",
            " rejected",
            " too big",
            "mailbox",
            " full",
            "no ",
            " here",
            "recipient",
            " unknown",
            "unknown ",
            "z",
            "x",
            "mail",
        ];
        for text in super::super::scan::piece_texts(&parts, 777, 3000, 12) {
            let mut found = [false; 8];
            let mut new = Vec::new();
            index.find_all(text.as_bytes(), &mut found, |id| new.push(id));
            for (id, p) in pieces.iter().enumerate() {
                assert_eq!(found[id], text.contains(p), "{text:?} {p:?}");
                assert_eq!(new.contains(&id), found[id], "{text:?} {p:?}");
            }
        }
    }

    /// [`scan`] as the tables define it: every phrase tried on its own.
    fn scan_by_phrase(text: &str) -> Hits {
        let mut hits = Hits::default();
        for &(table, list) in ALL_TABLES {
            for (reason, phrases) in list {
                if phrases.iter().any(|p| phrase_matches(text, p)) {
                    hits.set(table, *reason);
                }
            }
        }
        hits
    }

    #[test]
    fn scan_agrees_with_each_phrase_tried_alone() {
        let phrases: Vec<&str> = ALL_TABLES
            .iter()
            .flat_map(|(_, list)| list.iter())
            .flat_map(|(_, ps)| ps.iter().copied())
            .collect();
        let mut texts = vec![String::new(), "a".into(), "abcdefg".into()];
        for (i, p) in phrases.iter().enumerate() {
            let filled = p.replace('*', " x ");
            // At the start, the end, in the middle at each alignment, cut
            // short by one byte, and beside the next phrase.
            texts.push(filled.clone());
            for pad in 1..=STRIDE {
                texts.push(format!("{}{filled}. ok", "-".repeat(pad)));
            }
            texts.push(filled[..filled.len() - 1].to_string());
            let next = phrases[(i + 1) % phrases.len()].replace('*', "");
            texts.push(format!("{filled}{next}"));
        }
        for t in &texts {
            let (fast, slow) = (scan(t), scan_by_phrase(t));
            assert_eq!(
                (fast.first, fast.second, fast.certain),
                (slow.first, slow.second, slow.certain),
                "{t:?}"
            );
        }
    }

    #[test]
    fn context_scan_agrees_with_the_full_scan() {
        for text in [
            "the user(s) account is disabled.",
            "because the address couldn't be found, or is unable to receive mail",
            "mailbox full; user unknown",
            "",
        ] {
            let (full, part) = (scan(text), scan_context(text));
            assert_eq!(full.first(Reason::Suspend), part.first(Reason::Suspend));
            assert_eq!(full.certain_unknown(), part.certain_unknown());
        }
    }

    #[test]
    fn phrases_are_lowercase() {
        for (r, ps) in PHRASES.iter().chain(SECOND_PHRASES) {
            for p in *ps {
                assert_eq!(*p, p.to_lowercase(), "{r}: {p}");
            }
        }
    }

    #[test]
    fn status_codes_map_to_reasons() {
        assert_eq!(status_reason("5.1.1"), Some(Reason::UserUnknown));
        assert_eq!(status_reason("4.2.2"), Some(Reason::MailboxFull));
        assert_eq!(status_reason("5.0.0"), None);
    }
}
