//! The OCI data model: media types, platforms, descriptors, manifests, indexes,
//! canonical JSON, image locations and image layouts.

pub mod artifact;
pub mod canonical;
pub mod docker_archive;
pub mod image;
pub mod layout;
pub mod limits;
pub mod location;
pub mod media;
pub mod model;
pub mod platform;
pub mod reference;
pub mod source;
