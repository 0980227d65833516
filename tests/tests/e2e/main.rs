//! burst end-to-end tests: real master and worker processes.

mod ec2;
