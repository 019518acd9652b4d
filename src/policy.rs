//! Pure counting and blocking rules (SPEC section 4): counters, limits and
//! `now` in, decisions out. No I/O.
//!
//! (Skeleton: lands with the counting-database issue.)
