//! Exit codes (sysexits, SPEC section 6), mapped in one place.

/// The process exit status of a run, ordered so that a worse outcome compares
/// greater ("worst outcome wins" when several sites fail differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: everything went fine.
    Ok,
    /// 64: the command line was wrong.
    Usage,
    /// 65: a message or input file could not be read.
    DataErr,
    /// 69: the mail server could not be reached.
    Unavailable,
    /// 74: an I/O or database error.
    IoErr,
    /// 75: temporary failure (lock held, timeout, connection dropped): retry later.
    TempFail,
    /// 77: the server refused the login.
    NoPerm,
    /// 78: the configuration is wrong.
    Config,
}

impl Exit {
    /// The numeric code handed to the operating system.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Usage => 64,
            Exit::DataErr => 65,
            Exit::Unavailable => 69,
            Exit::IoErr => 74,
            Exit::TempFail => 75,
            Exit::NoPerm => 77,
            Exit::Config => 78,
        }
    }

    /// How bad an outcome is, for "the worst outcome wins". Configuration and
    /// local I/O problems rank above server trouble because they need a human;
    /// a temporary failure ranks lowest among failures because cron retries.
    fn severity(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::TempFail => 1,
            Exit::DataErr => 2,
            Exit::Unavailable => 3,
            Exit::NoPerm => 4,
            Exit::IoErr => 5,
            Exit::Usage => 6,
            Exit::Config => 7,
        }
    }

    /// The worse of two outcomes.
    pub fn worst(self, other: Exit) -> Exit {
        if other.severity() > self.severity() { other } else { self }
    }
}

/// Every library error type says which exit code it means.
pub trait ExitCode {
    /// The sysexits code for this error.
    fn exit(&self) -> Exit;
}
