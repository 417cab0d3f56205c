//! Bearer-token authentication: requests without the token get 401 with a `Status` body
//! (health and `/version` stay open). STUB: owned by the `binary` work package.
