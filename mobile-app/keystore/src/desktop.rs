//! Desktops: no hardware key store. The state file stays sealed under the PIN and the server's
//! OPRF key only (`sm2_cosign::seal`), as before this plugin.

use std::{fmt, marker::PhantomData};

use tauri::Runtime;

use crate::Error;

/// The device's hardware key store; on desktops a stand-in that has none.
pub struct Keystore<R: Runtime>(PhantomData<fn() -> R>);

impl<R: Runtime> fmt::Debug for Keystore<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystore")
            .field("hardware_backed", &false)
            .finish()
    }
}

#[allow(clippy::unused_self)] // the same methods as on mobile, where `self` is the plugin handle
impl<R: Runtime> Keystore<R> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }

    /// `false`: nothing wraps the state file on desktops.
    pub fn hardware_backed(&self) -> bool {
        false
    }

    /// Always [`Error::Unsupported`] on desktops.
    pub fn wrap(&self, _plain: &[u8]) -> Result<Vec<u8>, Error> {
        Err(Error::Unsupported)
    }

    /// Always [`Error::Unsupported`] on desktops.
    pub fn unwrap(&self, _wrapped: &[u8]) -> Result<Vec<u8>, Error> {
        Err(Error::Unsupported)
    }

    /// Always [`Error::Unsupported`] on desktops.
    pub fn delete_key(&self) -> Result<(), Error> {
        Err(Error::Unsupported)
    }
}
