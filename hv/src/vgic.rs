//! The emulated GIC distributor a partition sees (placeholder; see the vGIC work).
