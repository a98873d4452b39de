//! Enrolment: activation code → device key → two-party key generation → certificate →
//! the share sealed under the PIN.

use cosign_proto::v1::cosign::{
    DeviceUnbound, EnrollBegin, EnrollBegun, EnrollFinish, EnrollFinished, EnrollKeygen, EnrollSms,
    EnrollSmsSent, UnbindDevice,
};
use sm2_cosign::OsRng;
use sm2_cosign::keygen::{ClientKeygen, KeygenResponse};
use sm2_cosign::seal::{OprfClient, seal_share};

use crate::client::{Client, DeviceKey};
use crate::state::PhoneState;
use crate::{PhoneError, Result};

/// Shortest PIN accepted.
pub const MIN_PIN_LEN: usize = 6;

/// A new PIN must be at least [`MIN_PIN_LEN`] digits.
pub fn check_pin_format(pin: &str) -> Result<()> {
    if pin.chars().count() < MIN_PIN_LEN || !pin.chars().all(|c| c.is_ascii_digit()) {
        return Err(PhoneError::State(format!(
            "PIN 须为至少 {MIN_PIN_LEN} 位数字 / the PIN must have at least {MIN_PIN_LEN} digits"
        )));
    }
    Ok(())
}

/// Asks the server to text the activation SMS code to the staff member's phone on record (the
/// second factor, when the server requires one; the code is then given to
/// [`enroll_with_sms`]).
pub async fn request_sms_code(
    server: &str,
    staff_id: &str,
    activation_code: &str,
) -> Result<EnrollSmsSent> {
    Client::new(server)
        .post(
            "/api/v1/phone/enroll/sms",
            &EnrollSms {
                staff_id: staff_id.to_owned(),
                activation_code: activation_code.to_owned(),
            },
        )
        .await
}

/// Enrols this phone for `staff_id` with an activation code and a new PIN (servers without a
/// second factor).
pub async fn enroll(
    server: &str,
    staff_id: &str,
    activation_code: &str,
    device_name: &str,
    pin: &str,
) -> Result<PhoneState> {
    enroll_with_sms(server, staff_id, activation_code, None, device_name, pin).await
}

/// Enrols this phone with an activation code, the SMS code from [`request_sms_code`] when the
/// server asks for one (`SMS_CODE_REQUIRED` otherwise), and a new PIN.
pub async fn enroll_with_sms(
    server: &str,
    staff_id: &str,
    activation_code: &str,
    sms_code: Option<&str>,
    device_name: &str,
    pin: &str,
) -> Result<PhoneState> {
    check_pin_format(pin)?;
    let (device_key, device_secret) = DeviceKey::generate()?;
    let begun: EnrollBegun = Client::new(server)
        .post(
            "/api/v1/phone/enroll",
            &EnrollBegin {
                staff_id: staff_id.to_owned(),
                activation_code: activation_code.to_owned(),
                device_name: device_name.to_owned(),
                device_public_key: device_key.public_hex(),
                sms_code: sms_code.map(str::to_owned),
            },
        )
        .await?;
    let client = Client::new(server).with_device(&begun.device_id, device_key);
    let (keygen, first) = ClientKeygen::start_os(begun.session)?;
    let answer: KeygenResponse = client
        .post(
            "/api/v1/phone/enroll/keygen",
            &EnrollKeygen { keygen: first },
        )
        .await?;
    let (share, confirm) = keygen.finish(&answer)?;
    let context = PhoneState::pin_context(staff_id, &begun.device_id);
    let (blind, oprf) = OprfClient::blind(&mut OsRng, &context, pin.as_bytes())?;
    let done: EnrollFinished = client
        .post(
            "/api/v1/phone/enroll/finish",
            &EnrollFinish { confirm, oprf },
        )
        .await?;
    let unlock = blind.finalize(&done.oprf)?;
    let sealed_share = seal_share(&mut OsRng, &unlock, &share)?;
    Ok(PhoneState {
        server: server.trim_end_matches('/').to_owned(),
        staff_id: staff_id.to_owned(),
        device_id: begun.device_id,
        device_key: device_secret.to_string(),
        sealed_share,
        certificate: done.certificate,
        serial: done.serial,
    })
}

/// Unbinds this phone on the server (`POST /api/v1/phone/unbind`): the device is revoked and
/// the server's key share destroyed; with `revoke_certificate` the signing certificate and the
/// auto-sign authorisations are revoked too. The caller deletes the local state afterwards
/// (it can no longer be used for anything).
pub async fn unbind(
    client: &Client,
    revoke_certificate: bool,
    reason: Option<String>,
) -> Result<DeviceUnbound> {
    client
        .post(
            "/api/v1/phone/unbind",
            &UnbindDevice {
                revoke_certificate,
                reason,
            },
        )
        .await
}
