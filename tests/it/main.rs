//! pgsim's integration tests: one binary, one module per area.

#[allow(dead_code, unreachable_pub)]
#[path = "../../recorder/src/routing.rs"]
mod routing_scenario;
#[allow(dead_code, unreachable_pub)]
#[path = "../../recorder/src/scenario.rs"]
mod scenario;
#[allow(dead_code, unreachable_pub)]
#[path = "../../recorder/src/survey.rs"]
mod survey_scenario;
#[allow(dead_code, unreachable_pub)]
#[path = "../../recorder/src/toolkit.rs"]
mod toolkit;

mod bad_input;
mod cli;
mod drivers;
mod faults;
mod key_nearest;
mod key_props;
mod live;
mod protocol;
mod replay_demo;
mod routing;
mod scoped;
mod support;
mod survey;
mod toolkit_cases;
mod types;
mod wire_bytes;
