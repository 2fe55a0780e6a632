//! What hv does when a vCPU of an RT partition faults (leaves its sandbox, or raises an
//! exception hv cannot handle): the board file's `on_fault` and `restart_limit`, turned
//! into one decision per fault.
//!
//! Owns the decision and the count of fault restarts, which lives as long as the machine
//! (a partition that faults at every boot is stopped after its limit, never rebooted for
//! ever). It never touches a vCPU or memory: the arch code carries the decision out, and
//! the faulting vCPU has already been reported before the policy is asked.

use platform::config::{OnFault, Partition, DEFAULT_RESTART_LIMIT};

/// What to do about one fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Stop only the faulting vCPU.
    StopVcpu,
    /// Stop the whole partition (`on_fault = "stop"`).
    StopPartition,
    /// Reload and reboot the partition: fault restart number `attempt` of `limit`.
    Restart { attempt: u32, limit: u32 },
    /// `on_fault = "restart"`, but `limit` fault restarts were made already: stop it.
    GiveUp { limit: u32 },
}

/// A partition's fault policy and the fault restarts made so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultPolicy {
    on_fault: OnFault,
    limit: u32,
    restarts: u32,
}

impl FaultPolicy {
    pub fn new(partition: &Partition) -> Self {
        Self {
            on_fault: partition.on_fault,
            limit: partition.restart_limit.unwrap_or(DEFAULT_RESTART_LIMIT),
            restarts: 0,
        }
    }

    pub fn on_fault(&self) -> OnFault {
        self.on_fault
    }

    /// Fault restarts made in the machine's life.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Decides about one fault, counting a restart it grants.
    pub fn decide(&mut self) -> FaultAction {
        match self.on_fault {
            OnFault::StopVcpu => FaultAction::StopVcpu,
            OnFault::Stop => FaultAction::StopPartition,
            OnFault::Restart if self.restarts < self.limit => {
                self.restarts += 1;
                FaultAction::Restart {
                    attempt: self.restarts,
                    limit: self.limit,
                }
            }
            OnFault::Restart => FaultAction::GiveUp { limit: self.limit },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::fixtures;
    use platform::config::{PartitionKind, Region};

    fn policy(on_fault: OnFault, limit: Option<u32>) -> FaultPolicy {
        let mut p = fixtures::config(PartitionKind::Rt, &[2, 3], Region::new(0, 0x1000));
        (p.on_fault, p.restart_limit) = (on_fault, limit);
        FaultPolicy::new(&p)
    }

    #[test]
    fn the_default_stops_only_the_vcpu_every_time() {
        let mut p = policy(OnFault::StopVcpu, None);
        for _ in 0..5 {
            assert_eq!(p.decide(), FaultAction::StopVcpu);
        }
        assert_eq!(p.restarts(), 0);
    }

    #[test]
    fn stop_stops_the_partition() {
        assert_eq!(
            policy(OnFault::Stop, None).decide(),
            FaultAction::StopPartition
        );
    }

    #[test]
    fn restarts_are_counted_up_to_the_limit_then_it_gives_up() {
        let mut p = policy(OnFault::Restart, Some(2));
        assert_eq!(
            p.decide(),
            FaultAction::Restart {
                attempt: 1,
                limit: 2
            }
        );
        assert_eq!(
            p.decide(),
            FaultAction::Restart {
                attempt: 2,
                limit: 2
            }
        );
        assert_eq!(p.decide(), FaultAction::GiveUp { limit: 2 });
        assert_eq!(p.decide(), FaultAction::GiveUp { limit: 2 });
        assert_eq!(p.restarts(), 2);
    }

    #[test]
    fn the_default_limit_applies_when_the_board_file_gives_none() {
        let mut p = policy(OnFault::Restart, None);
        let granted = (0..10)
            .filter(|_| matches!(p.decide(), FaultAction::Restart { .. }))
            .count();
        assert_eq!(granted, DEFAULT_RESTART_LIMIT as usize);
    }
}
