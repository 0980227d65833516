//! Local provider: placeholder
