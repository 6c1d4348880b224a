//! `minipay`: the newcomer's tool. It finds or starts PostgreSQL, Redis and RabbitMQ, starts
//! the simulator and the three services as separate processes from the deployed binaries,
//! waits for readiness, runs a real purchase as a self-check, and stops everything cleanly;
//! `load` drives a running stack with concurrent buyers to size its pods; `chaos` runs the
//! fault matrix. The end-to-end
//! tests start the stack through the same code.

pub mod chaos;
pub mod cli;
pub mod gateway;
pub mod infra;
pub mod load;
pub mod process;
pub mod purchase;
pub mod stack;
pub mod status;

pub use self::stack::{Ports, RunningStack, StackConfig, StackError};
