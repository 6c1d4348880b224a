//! order-svc (in progress).
