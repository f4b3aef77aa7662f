//! The HTTP edge: Lambda events in, routes and ids, responses out.

pub mod lambda;
pub mod response;
pub mod route;
