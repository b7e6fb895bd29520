//! The VRRP advert interval: whole seconds with VRRPv2 (the advert carries seconds), hundredths
//! with VRRPv3 (centiseconds, at most 4095). A backup takes over after three missed adverts, so
//! the interval sets how long a load balancer's power loss costs clients.

use super::Validator;
use crate::inventory::LoadBalancer;
use crate::inventory::located::FieldPath;

impl Validator<'_> {
    pub(super) fn advert_interval(&mut self, path: &FieldPath, lb: &LoadBalancer, secs: f64) {
        let centis = secs * 100.0;
        if !secs.is_finite() || secs <= 0.0 || (centis - centis.round()).abs() > 1e-6 {
            self.error(
                path,
                format!("advert_interval {secs} is not a number of hundredths of a second above 0"),
            );
            return;
        }
        match lb.vrrp_version() {
            2 if centis % 100.0 != 0.0 || !(1.0..=255.0).contains(&secs) => self.error(
                path,
                format!(
                    "advert_interval {secs}: VRRPv2 (an IPv4 VIP with auth_password) takes whole \
                     seconds, 1-255; sub-second adverts need VRRPv3, which has no authentication: \
                     remove auth_password to use it"
                ),
            ),
            3 if centis > 4095.0 => self.error(
                path,
                format!("advert_interval {secs} is out of range: VRRPv3 takes 0.01-40.95 seconds"),
            ),
            _ => {}
        }
    }
}
