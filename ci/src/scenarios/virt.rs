//! The virtualisation backends' finer points: extended state (XSAVE), interrupt
//! injection and the interrupt window.

#[allow(unused_imports)]
use super::*;

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[];
