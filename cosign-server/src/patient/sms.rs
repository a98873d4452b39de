//! Where patient texts go: the hospital gateway of `[sms]` (`identity::sms`, shared with staff
//! activation), or — without one — [`NoGateway`], which logs that nothing was sent and, only
//! with `[patient] sms_dev_echo`, prints the text for local trials.

use std::sync::Arc;

use crate::identity::sms::{HttpSmsGateway, SmsError, SmsGateway, SmsMessage};

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

/// The gateway `[sms]` configures, else [`NoGateway`] as `[patient]` says.
pub fn from_config(config: &crate::config::Config) -> Arc<dyn SmsGateway> {
    match HttpSmsGateway::from_config(&config.sms) {
        Some(g) => Arc::new(g),
        None => Arc::new(NoGateway {
            echo: config.patient.sms_dev_echo,
        }),
    }
}
