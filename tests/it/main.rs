//! pgsim's integration tests: one binary, one module per area. The
//! scenarios that recorded `fixtures/` come from `pgsim_recorder`.

mod auth;
mod backup;
mod bad_input;
mod cli;
mod credentials;
mod drivers;
mod faults;
mod fuzz;
mod hostile;
mod index_cache;
mod key_nearest;
mod key_props;
mod kill9;
mod live;
mod metrics;
mod migrate;
mod protocol;
mod readme;
mod record_modes;
mod replay_demo;
mod roles;
mod routing;
mod rules;
mod scoped;
mod secrets;
mod support;
mod survey;
mod tenancy;
mod tls;
mod toolkit_cases;
mod traces;
mod types;
mod verify;
mod wire_bytes;
