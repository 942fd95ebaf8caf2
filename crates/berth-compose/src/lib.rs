//! Compose, client side as in Docker: this crate reads compose files as the Compose
//! Specification says. So far: variable interpolation, `.env` files, project names, and
//! loading a file into an interpolated YAML tree whose errors name the file and the
//! key. The model, merging, planning and applying come next (issue 7).

pub mod dotenv;
pub mod graph;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod model;
pub mod project;
