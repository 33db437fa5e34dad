//! The handlers, one file per part of the API.

pub(crate) mod catalog;
pub(crate) mod console;
pub(crate) mod docs;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod holds;
pub(crate) mod metrics;
pub(crate) mod ops;
pub(crate) mod orders;
pub(crate) mod webhooks;
