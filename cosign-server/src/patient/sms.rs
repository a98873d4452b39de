//! Where patient texts go: the hospital gateway of `[sms]` (`identity::sms`, shared with staff
//! activation), or — without one — [`NoGateway`], which logs that nothing was sent and, only
//! with `[patient] sms_dev_echo`, prints the text for local trials.

use std::sync::Arc;

use crate::identity::sms::{SmsError, SmsGateway, SmsMessage};

use cosign_proto::v1::patient::mask_phone;

/// No gateway configured.
#[derive(Debug, Default)]
pub struct NoGateway {
    /// Print the text to the console (`[patient] sms_dev_echo`, local trials only).
    pub echo: bool,
}

#[async_trait::async_trait]
impl SmsGateway for NoGateway {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        let phone = mask_phone(&message.phone);
        tracing::warn!(phone = %phone, "SMS to {phone} not sent: no gateway");
        if self.echo {
            #[allow(clippy::print_stdout)]
            {
                println!("[sms_dev_echo] {phone}: {}", message.text);
            }
        }
        Ok(())
    }
}

/// `gateway` (the server's `[sms]` one), else [`NoGateway`] as `[patient]` says.
pub fn or_no_gateway(
    gateway: Option<Arc<dyn SmsGateway>>,
    cfg: &crate::config::PatientConfig,
) -> Arc<dyn SmsGateway> {
    gateway.unwrap_or_else(|| {
        Arc::new(NoGateway {
            echo: cfg.sms_dev_echo,
        })
    })
}
