//! JavaScript error processing, without I/O: parse a raw
//! `Error.stack` from any engine into frames ([`stack`]), decide which frames
//! are the application's own, and group errors into issues ([`grouping`]);
//! [`process_error`] does all of it to an ingested event, and
//! [`RecentStacks`] remembers its results for repeats of a stack.

pub mod grouping;
pub mod process;
pub mod recent_stacks;
pub mod stack;
pub mod symbolicate;

pub use process::{process_error, resolve_frames};
pub use recent_stacks::RecentStacks;
pub use stack::{StackFrame, is_in_app, parse_stack};
pub use symbolicate::{IndexedMap, MapLookup, source_context};
