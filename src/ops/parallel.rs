//! Running the classifier on every core: a batch at a time while this
//! thread does something else ([`in_parallel`]), or a whole list in order,
//! this thread working too and taking each result as it comes
//! ([`in_order`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Items a worker takes at a time: message sizes vary a thousandfold, so a
/// fixed split would leave a core idle at the end.
pub(super) const STEP: usize = 16;

/// How far past the last item taken [`in_order`]'s workers may run: what
/// bounds the results held at once (about 512 bytes each for a dry run's
/// reports).
const AHEAD: usize = 2048;

/// Worker threads to use: one per core, at most 8. Asked once per run: on
/// Linux each answer reads the cgroup's CPU quota files (three opens, reads
/// and closes) as well.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    cores.min(8)
}

/// Runs `part` over `items`, a few at a time, on up to one worker thread
/// per core (at most 8) while this thread runs `meanwhile`; the results in
/// the order of the items. `part` is given where its items start.
pub(super) fn in_parallel<R: Sync, P: Send, T>(
    items: &[R],
    part: impl Fn(usize, &[R]) -> P + Sync,
    meanwhile: impl FnOnce() -> T,
) -> (Vec<P>, T) {
    if items.is_empty() {
        return (Vec::new(), meanwhile());
    }
    let workers = cores().min(items.len().div_ceil(STEP));
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(STEP, Ordering::Relaxed);
                        let Some(these) = items.get(start..(start + STEP).min(items.len())) else {
                            break done;
                        };
                        done.push((start, part(start, these)));
                    }
                })
            })
            .collect();
        let during = meanwhile();
        let mut parts: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();
        parts.sort_unstable_by_key(|&(start, _)| start);
        (parts.into_iter().map(|(_, p)| p).collect(), during)
    })
}

/// Runs `part` over all of `items`, a few at a time, on one thread per core
/// (this one and up to 7 more), and gives each part's result to `take` on
/// this thread in the order of the items. The same threads serve the whole
/// list: no batch ends with a core waiting for the last part of it, and no
/// thread is started per batch. Each thread makes its own `W` with
/// `worker` (buffers it reuses) and hands it to every `part` it runs.
///
/// Memory stays flat in the number of items: a thread waits rather than
/// run more than [`AHEAD`] items past the last one taken. The first error
/// of `take` stops the run (parts under way finish and are dropped) and is
/// returned.
pub(super) fn in_order<R: Sync, W, P: Send, E>(
    items: &[R],
    worker: impl Fn() -> W + Sync,
    part: impl Fn(&mut W, usize, &[R]) -> P + Sync,
    mut take: impl FnMut(P) -> Result<(), E>,
) -> Result<(), E> {
    let len = items.len();
    let helpers = cores().min(len.div_ceil(STEP)).saturating_sub(1);
    let shared = Shared {
        next: AtomicUsize::new(0),
        state: Mutex::new(State {
            ready: BTreeMap::new(),
            taken: 0,
            helpers,
            stop: false,
            taker_waits: false,
            helpers_waiting: 0,
        }),
        arrived: Condvar::new(),
        room: Condvar::new(),
    };
    let run = |w: &mut W, start: usize| part(w, start, &items[start..(start + STEP).min(len)]);
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|| {
                // Tells this thread's end to the taker even when a part
                // panics: it must not wait for a part that will not come.
                let _gone = Gone(&shared);
                let mut w = worker();
                while let Some(start) = shared.claim(len) {
                    if !shared.room_for(start) {
                        break;
                    }
                    let p = run(&mut w, start);
                    shared.deliver(start, p);
                }
            });
        }
        // However this thread leaves (done, failed, or a panic in its own
        // part), helpers waiting for room must not wait for it.
        let _stop = Stop(&shared);
        let mut w = worker();
        // The start of the next part to take.
        let mut want = 0;
        loop {
            let claimed = shared.claim(len);
            // Take what is ready in order; wait for more when this
            // thread's own next part would run too far ahead, or when it
            // has nothing left to do but take.
            let block = |want| match claimed {
                Some(start) => start >= want + AHEAD,
                None => want < len,
            };
            let mut failed = None;
            while let Some(p) = shared.ready(want, block(want)) {
                want += STEP;
                if let Err(e) = take(p) {
                    failed = Some(e);
                    break;
                }
            }
            if let Some(e) = failed {
                break Err(e);
            }
            match claimed {
                Some(start) => {
                    let p = run(&mut w, start);
                    shared.lock().ready.insert(start, p);
                }
                // Everything taken (or a helper died, and the scope
                // resumes its panic).
                None => break Ok(()),
            }
        }
    })
}

/// What [`in_order`]'s threads share.
struct Shared<P> {
    /// The start of the next part to claim.
    next: AtomicUsize,
    state: Mutex<State<P>>,
    /// Signalled to the taker when the part it waits for is ready, or a
    /// helper has ended.
    arrived: Condvar,
    /// Signalled to helpers when the taker has moved on, or stopped.
    room: Condvar,
}

struct State<P> {
    /// Finished parts not yet taken, by start.
    ready: BTreeMap<usize, P>,
    /// The start of the part the taker takes next.
    taken: usize,
    /// Helper threads still running.
    helpers: usize,
    /// The taker failed, or a helper panicked: everyone stops.
    stop: bool,
    taker_waits: bool,
    helpers_waiting: usize,
}

impl<P> Shared<P> {
    fn lock(&self) -> MutexGuard<'_, State<P>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The start of an unclaimed part, if any is left.
    fn claim(&self, len: usize) -> Option<usize> {
        let start = self.next.fetch_add(STEP, Ordering::Relaxed);
        (start < len).then_some(start)
    }

    /// Waits while the part at `start` would be too far ahead of the
    /// taker; false when the taker has stopped.
    fn room_for(&self, start: usize) -> bool {
        let mut s = self.lock();
        while start >= s.taken + AHEAD && !s.stop {
            s.helpers_waiting += 1;
            s = self.room.wait(s).unwrap_or_else(PoisonError::into_inner);
            s.helpers_waiting -= 1;
        }
        !s.stop
    }

    /// A helper's finished part.
    fn deliver(&self, start: usize, p: P) {
        let mut s = self.lock();
        s.ready.insert(start, p);
        if s.taker_waits && start == s.taken {
            self.arrived.notify_one();
        }
    }

    /// The part at `want` once it is ready (waiting for it when `block`),
    /// or `None`: not ready and not `block`, or no helper left to make it
    /// (one panicked).
    /// Every part before `want` has been taken.
    fn ready(&self, want: usize, block: bool) -> Option<P> {
        let mut s = self.lock();
        s.taken = want;
        if s.helpers_waiting > 0 {
            self.room.notify_all();
        }
        loop {
            if let Some(p) = s.ready.remove(&want) {
                return Some(p);
            }
            if !block || s.helpers == 0 || s.stop {
                return None;
            }
            s.taker_waits = true;
            s = self.arrived.wait(s).unwrap_or_else(PoisonError::into_inner);
            s.taker_waits = false;
        }
    }
}

/// Dropped when the taker leaves [`in_order`]: stops the helpers.
struct Stop<'a, P>(&'a Shared<P>);

impl<P> Drop for Stop<'_, P> {
    fn drop(&mut self) {
        self.0.lock().stop = true;
        self.0.room.notify_all();
    }
}

/// Dropped when a helper thread ends, normally or by a panic.
struct Gone<'a, P>(&'a Shared<P>);

impl<P> Drop for Gone<'_, P> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.helpers -= 1;
        // A part that panicked will never be ready: everyone stops, and
        // the scope resumes the panic.
        if std::thread::panicking() {
            s.stop = true;
            self.0.room.notify_all();
        }
        self.0.arrived.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_takes_every_part_once_in_order() {
        for len in [0, 1, STEP - 1, STEP, STEP + 1, 5 * AHEAD + 7] {
            let items: Vec<usize> = (0..len).collect();
            let mut seen = Vec::new();
            let outcome: Result<(), ()> = in_order(
                &items,
                || 0usize,
                |calls, start, part| {
                    *calls += 1;
                    assert_eq!(part.first(), items.get(start));
                    part.to_vec()
                },
                |p| {
                    seen.extend(p);
                    Ok(())
                },
            );
            assert_eq!(outcome, Ok(()));
            assert_eq!(seen, items, "{len} items");
        }
    }

    #[test]
    fn in_order_stops_at_the_first_error_of_take() {
        let items: Vec<usize> = (0..10 * AHEAD).collect();
        let mut taken = 0;
        let outcome = in_order(
            &items,
            || (),
            |_, _, part| part.len(),
            |n| {
                taken += n;
                if taken >= 3 * STEP {
                    Err(taken)
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(outcome, Err(3 * STEP));
        assert_eq!(taken, 3 * STEP);
    }

    #[test]
    fn in_order_resumes_a_workers_panic_instead_of_waiting_for_its_part() {
        let items: Vec<usize> = (0..4 * AHEAD).collect();
        let run = std::panic::catch_unwind(|| {
            let _: Result<(), ()> = in_order(
                &items,
                || (),
                |_, start, part| {
                    assert_ne!(start, 5 * STEP, "a part that fails");
                    part.len()
                },
                |_| Ok(()),
            );
        });
        assert!(run.is_err());
    }

    #[test]
    fn in_order_holds_at_most_a_window_of_results() {
        // Parts finished but not taken never exceed the window (plus the
        // parts under way), however slow the taker.
        let items: Vec<usize> = (0..20 * AHEAD).collect();
        let made = AtomicUsize::new(0);
        let mut taken = 0;
        let outcome: Result<(), ()> = in_order(
            &items,
            || (),
            |_, _, part| {
                made.fetch_add(part.len(), Ordering::SeqCst);
                part.len()
            },
            |n| {
                let ahead = made.load(Ordering::SeqCst) - taken;
                assert!(ahead <= AHEAD + cores() * STEP, "{ahead} ahead");
                std::thread::yield_now();
                taken += n;
                Ok(())
            },
        );
        assert_eq!(outcome, Ok(()));
        assert_eq!(taken, items.len());
    }
}
