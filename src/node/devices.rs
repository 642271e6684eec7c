//! The device registry. (stub)

/// Devices that connected.
pub struct Devices;
