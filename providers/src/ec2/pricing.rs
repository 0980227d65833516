//! What an instance costs per hour, for the ledger and build cost estimates:
//! the spot price history for spot instances, the configured table otherwise
//! (and for spot when the history has nothing).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_ec2::types::InstanceType;
use aws_sdk_ec2::Client;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::errors::from_sdk;
use super::retry::with_retries;
use super::settings::{Platform, RetrySettings};

/// Spot prices move slowly; one lookup per type and zone per period is plenty.
const SPOT_CACHE_TTL: Duration = Duration::from_secs(300);

/// A price and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub per_hour: f64,
    pub source: &'static str,
}

/// (instance type, zone) -> when looked up, and the price found.
type SpotCache = HashMap<(String, String), (Instant, Option<f64>)>;

pub struct Pricing {
    table: BTreeMap<String, f64>,
    product: &'static str,
    spot: Mutex<SpotCache>,
}

impl Pricing {
    pub fn new(table: BTreeMap<String, f64>, platform: Platform) -> Self {
        Self {
            table,
            product: match platform {
                Platform::Linux => "Linux/UNIX",
                Platform::Windows => "Windows",
            },
            spot: Mutex::new(HashMap::new()),
        }
    }

    fn configured(&self, instance_type: &str) -> Option<Price> {
        self.table.get(instance_type).map(|p| Price {
            per_hour: *p,
            source: "config",
        })
    }

    /// The hourly price of a launched instance. Never fails a launch: a
    /// failed lookup only leaves the price unknown.
    pub async fn price(
        &self,
        client: &Client,
        retry: &RetrySettings,
        spot: bool,
        instance_type: &str,
        az: &str,
    ) -> Option<Price> {
        if !spot {
            return self.configured(instance_type);
        }
        let key = (instance_type.to_owned(), az.to_owned());
        let mut cache = self.spot.lock().await;
        let cached = cache
            .get(&key)
            .filter(|(at, _)| at.elapsed() < SPOT_CACHE_TTL)
            .map(|(_, p)| *p);
        let spot_price = match cached {
            Some(p) => p,
            None => {
                let p = self.spot_history(client, retry, instance_type, az).await;
                cache.insert(key, (Instant::now(), p));
                p
            }
        };
        drop(cache);
        spot_price
            .map(|per_hour| Price {
                per_hour,
                source: "spot-price-history",
            })
            .or_else(|| self.configured(instance_type))
    }

    async fn spot_history(
        &self,
        client: &Client,
        retry: &RetrySettings,
        instance_type: &str,
        az: &str,
    ) -> Option<f64> {
        let result = with_retries(retry, "DescribeSpotPriceHistory", || async {
            client
                .describe_spot_price_history()
                .instance_types(InstanceType::from(instance_type))
                .product_descriptions(self.product)
                .availability_zone(az)
                .start_time(aws_smithy_types::DateTime::from(
                    std::time::SystemTime::now(),
                ))
                .send()
                .await
                .map_err(|e| from_sdk("read the spot price history", e))
        })
        .await;
        match result {
            Ok(out) => latest_price(
                out.spot_price_history()
                    .iter()
                    .filter(|p| p.instance_type().map(|t| t.as_str()) == Some(instance_type))
                    .map(|p| {
                        (
                            p.availability_zone().unwrap_or_default(),
                            p.timestamp().map(|t| t.secs()).unwrap_or_default(),
                            p.spot_price().unwrap_or_default(),
                        )
                    }),
                az,
            ),
            Err(e) => {
                tracing::warn!(%instance_type, %az, error = %e, "failed to read the spot price; cost left unknown");
                None
            }
        }
    }
}

/// The newest price in `az`, or the newest anywhere when `az` has none.
fn latest_price<'a>(rows: impl Iterator<Item = (&'a str, i64, &'a str)>, az: &str) -> Option<f64> {
    let rows: Vec<(bool, i64, f64)> = rows
        .filter_map(|(zone, at, price)| Some((zone == az, at, price.parse::<f64>().ok()?)))
        .filter(|(_, _, p)| p.is_finite() && *p >= 0.0)
        .collect();
    rows.iter()
        .filter(|(same, _, _)| *same)
        .max_by_key(|(_, at, _)| *at)
        .or_else(|| rows.iter().max_by_key(|(_, at, _)| *at))
        .map(|(_, _, p)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_price_in_the_zone_wins() {
        let rows = [
            ("us-east-1a", 10, "0.0040"),
            ("us-east-1a", 20, "0.0050"),
            ("us-east-1b", 30, "0.0100"),
            ("us-east-1a", 5, "junk"),
        ];
        assert_eq!(latest_price(rows.into_iter(), "us-east-1a"), Some(0.005));
        assert_eq!(latest_price(rows.into_iter(), "eu-west-1a"), Some(0.01));
        assert_eq!(latest_price(std::iter::empty(), "x"), None);
    }

    #[test]
    fn on_demand_uses_the_table() {
        let p = Pricing::new(
            BTreeMap::from([("t3.micro".to_owned(), 0.0104)]),
            Platform::Linux,
        );
        assert_eq!(
            p.configured("t3.micro"),
            Some(Price {
                per_hour: 0.0104,
                source: "config"
            })
        );
        assert_eq!(p.configured("t3.large"), None);
    }
}
