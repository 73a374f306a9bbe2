//! Who serves the load in the `balanced` layout (issue 17): every `TICK`, how busy each
//! worker has been (the share of the tick its runtime spent running tasks, as Tokio counts
//! it) decides whether connections move, and the orders go to the workers' handoffs
//! (`connection/handoff.rs`), which move them between requests.
//!
//! Why: beside the service it guards, a gateway with one worker costs the whole request least
//! (its connections wake one thread, which does several requests per wake-up); as the busy
//! process of the machine, it needs a worker per CPU, as nginx has. Measured on two CPUs, no
//! fixed count served both (`specs/research.md`, "One worker beside the service"). So:
//! - **gather**: while the workers together have been busy less than `GATHER_BELOW` of one
//!   CPU for `QUIET_TICKS` ticks in a row, every connection moves to worker 0 (at its next
//!   request, however long it waits for it);
//! - **spread**: when a worker has been busy more than `SPREAD_ABOVE` of its tick, and
//!   another at least `MIN_GAP` less, enough of its connections move to the least busy one
//!   to even them out, assuming its connections are alike.
//!
//! The gap between the two thresholds keeps them from undoing each other: one worker
//! gathered is busy about what the workers were together, under `GATHER_BELOW`, far from
//! `SPREAD_ABOVE`.

use std::{sync::Arc, time::Duration};

use tokio::time::{Instant, MissedTickBehavior};

use crate::{connection::Handoffs, metrics::Metrics};

/// How often the balancer looks.
pub const TICK: Duration = Duration::from_millis(50);
/// Gather below this much of one CPU, the workers' busy shares summed.
pub const GATHER_BELOW: f64 = 0.5;
/// Ticks in a row under `GATHER_BELOW` before gathering: a pause between bursts is not a
/// lull.
pub const QUIET_TICKS: u32 = 4;
/// Spread from a worker busy more than this share of its tick.
pub const SPREAD_ABOVE: f64 = 0.8;
/// ... to one busy at least this much less.
pub const MIN_GAP: f64 = 0.25;

/// One worker, as the balancer saw it over the last tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Share of the tick its runtime ran tasks (may exceed 1 for a runtime of several threads).
    pub busy: f64,
    /// Its connections in use (a request within the last second): the ones that carry its
    /// load, and may move.
    pub connections: usize,
}

/// Connections to move: `count` from worker `from` to worker `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub from: usize,
    pub to: usize,
    pub count: usize,
}

/// An order's count for every connection the worker has, however many.
pub const ALL: usize = usize::MAX;

/// The balancer's memory between ticks.
#[derive(Debug, Default)]
pub struct Balance {
    /// Ticks in a row the workers were quiet together.
    quiet: u32,
}

impl Balance {
    /// The orders for the workers seen as `loads` (by worker index) over the last tick. Every
    /// worker without an order here has none.
    pub fn plan(&mut self, loads: &[Load]) -> Vec<Order> {
        let total: f64 = loads.iter().map(|load| load.busy).sum();
        if total < GATHER_BELOW {
            self.quiet = self.quiet.saturating_add(1);
        } else {
            self.quiet = 0;
        }
        if self.quiet >= QUIET_TICKS {
            // Every connection, not just those in use now: one that waits longer than a
            // second between requests is in use only while a request is under way, when a
            // tick seldom falls, so an order sized by the count in use would leave it where it
            // is. A standing order moves it as it wakes for its next request.
            return (1..loads.len())
                .map(|from| Order {
                    from,
                    to: 0,
                    count: ALL,
                })
                .collect();
        }
        let by_busy = |a: &(usize, &Load), b: &(usize, &Load)| a.1.busy.total_cmp(&b.1.busy);
        let (Some((hot, hot_load)), Some((cool, cool_load))) = (
            loads.iter().enumerate().max_by(by_busy),
            loads.iter().enumerate().min_by(by_busy),
        ) else {
            return Vec::new();
        };
        let gap = hot_load.busy - cool_load.busy;
        if hot == cool || hot_load.busy <= SPREAD_ABOVE || gap < MIN_GAP {
            return Vec::new();
        }
        // Connections alike: moving k of n takes k/n of the hot worker's load to the cool
        // one; even them out, at most half of the hot worker's connections at once.
        let share = gap / (2.0 * hot_load.busy);
        let count =
            ((hot_load.connections as f64 * share).ceil() as usize).min(hot_load.connections / 2);
        if count == 0 {
            return Vec::new();
        }
        vec![Order {
            from: hot,
            to: cool,
            count,
        }]
    }
}

/// Balances the workers of `handoffs` until dropped (the caller aborts it): every [`TICK`],
/// reads how busy each was, plans, and gives each worker its order (or none).
pub async fn run(handoffs: Arc<Handoffs>, metrics: Metrics) {
    let mut balance = Balance::default();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last: Option<(Instant, Vec<Option<Duration>>)> = None;
    loop {
        ticks.tick().await;
        let now = Instant::now();
        // How long each worker has been busy, if it takes part: its runtime runs and it takes
        // connections. One that could not start, or has stopped, is left out rather than
        // holding every other worker still.
        let busy: Vec<Option<Duration>> = handoffs
            .workers()
            .iter()
            .map(|worker| worker.busy_total().filter(|_| worker.takes_connections()))
            .collect();
        let Some((then, before)) = last.replace((now, busy.clone())) else {
            continue;
        };
        let elapsed = now.duration_since(then).as_secs_f64();
        if elapsed <= 0.0 {
            continue;
        }
        let taking_part: Vec<(usize, Load)> = handoffs
            .workers()
            .iter()
            .zip(busy.iter().zip(&before))
            .filter_map(|(worker, (busy, before))| {
                let busy = busy.as_ref()?.saturating_sub(*before.as_ref()?);
                let load = Load {
                    busy: busy.as_secs_f64() / elapsed,
                    connections: worker.connections(),
                };
                Some((worker.index(), load))
            })
            .collect();
        let orders = plan_for(&mut balance, &taking_part);
        for worker in handoffs.workers() {
            let order = orders.iter().find(|order| order.from == worker.index());
            match order {
                Some(order) => worker.order(order.count, order.to),
                None => worker.order(0, worker.index()),
            }
        }
        if !orders.is_empty() {
            tracing::debug!(?taking_part, ?orders, "moving connections between workers");
        }
        for (worker, load) in &taking_part {
            metrics.worker_load(*worker, load.busy, load.connections);
        }
    }
}

/// [`Balance::plan`] for the workers taking part, each given as its index and load (worker 0
/// first, when it takes part: gathering is onto the first): the orders, by worker index.
fn plan_for(balance: &mut Balance, taking_part: &[(usize, Load)]) -> Vec<Order> {
    let loads: Vec<Load> = taking_part.iter().map(|(_, load)| *load).collect();
    balance
        .plan(&loads)
        .into_iter()
        .map(|order| Order {
            from: taking_part[order.from].0,
            to: taking_part[order.to].0,
            count: order.count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(of: &[(f64, usize)]) -> Vec<Load> {
        of.iter()
            .map(|&(busy, connections)| Load { busy, connections })
            .collect()
    }

    #[test]
    fn quiet_workers_gather_on_worker_0_after_some_ticks_in_a_row() {
        let mut balance = Balance::default();
        let quiet = loads(&[(0.1, 3), (0.2, 4), (0.0, 0)]);
        for _ in 1..QUIET_TICKS {
            assert_eq!(balance.plan(&quiet), vec![]);
        }
        // Every other worker gives all its connections, those not in use now too (worker 2
        // has none in use: its connections move as they wake).
        assert_eq!(
            balance.plan(&quiet),
            vec![
                Order {
                    from: 1,
                    to: 0,
                    count: ALL
                },
                Order {
                    from: 2,
                    to: 0,
                    count: ALL
                }
            ]
        );
        // One busy tick starts the count again.
        assert_eq!(
            balance.plan(&loads(&[(0.3, 7), (0.3, 1), (0.0, 0)])),
            vec![]
        );
        assert_eq!(balance.plan(&quiet), vec![]);
    }

    #[test]
    fn a_worker_that_does_not_take_part_is_never_sent_connections() {
        let mut balance = Balance::default();
        // Worker 1 is left out (it never started): worker 0 spreads to worker 2, the only
        // other one taking part, and gathering takes from worker 2 alone.
        let taking_part = [
            (
                0,
                Load {
                    busy: 0.95,
                    connections: 10,
                },
            ),
            (
                2,
                Load {
                    busy: 0.1,
                    connections: 2,
                },
            ),
        ];
        let orders = plan_for(&mut balance, &taking_part);
        assert_eq!(orders.len(), 1);
        assert_eq!((orders[0].from, orders[0].to), (0, 2));
        let quiet = taking_part.map(|(index, load)| (index, Load { busy: 0.0, ..load }));
        for _ in 1..QUIET_TICKS {
            plan_for(&mut balance, &quiet);
        }
        assert_eq!(
            plan_for(&mut balance, &quiet),
            vec![Order {
                from: 2,
                to: 0,
                count: ALL
            }]
        );
    }

    #[test]
    fn a_saturated_worker_gives_an_idle_one_half_its_connections() {
        let mut balance = Balance::default();
        assert_eq!(
            balance.plan(&loads(&[(1.0, 64), (0.0, 0)])),
            vec![Order {
                from: 0,
                to: 1,
                count: 32
            }]
        );
        // Three workers: to the least busy.
        assert_eq!(
            balance.plan(&loads(&[(0.5, 10), (0.9, 20), (0.2, 10)])),
            vec![Order {
                from: 1,
                to: 2,
                count: 8
            }]
        );
    }

    #[test]
    fn workers_busy_alike_or_not_busy_enough_stay_as_they_are() {
        let mut balance = Balance::default();
        // Both saturated: nothing to gain.
        assert_eq!(balance.plan(&loads(&[(0.95, 32), (0.9, 32)])), vec![]);
        // Busy, but not enough to spread.
        assert_eq!(balance.plan(&loads(&[(0.7, 32), (0.0, 0)])), vec![]);
        // One connection cannot be split.
        assert_eq!(balance.plan(&loads(&[(1.0, 1), (0.0, 0)])), vec![]);
        // One worker: no one to move to.
        assert_eq!(balance.plan(&loads(&[(1.0, 10)])), vec![]);
        assert_eq!(balance.plan(&[]), vec![]);
    }

    #[test]
    fn gathered_load_does_not_spread_again_and_spread_load_does_not_gather() {
        let mut balance = Balance::default();
        // What gathering yields: one worker busy as much as both were, under GATHER_BELOW.
        // Nothing leaves worker 0 (the others' standing order to gather is all there is).
        for _ in 0..10 {
            let orders = balance.plan(&loads(&[(GATHER_BELOW * 0.9, 64), (0.0, 0)]));
            assert!(orders.iter().all(|order| order.to == 0), "{orders:?}");
        }
        // What spreading yields: two workers busy half as much as one was, over it together.
        for _ in 0..10 {
            assert_eq!(balance.plan(&loads(&[(0.55, 32), (0.5, 32)])), vec![]);
        }
    }
}
