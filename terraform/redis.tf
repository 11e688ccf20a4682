# Memorystore for Redis: the score cache's shared tier (ml-service only). Losing it costs cache hits, never
# correctness: ml-service falls back to its in-process cache.

resource "google_redis_instance" "cache" {
  #checkov:skip=CKV_GCP_97:the cache holds no personal data or secrets, and ml-service's Redis client cannot load the instance CA yet (see the comment below)
  name               = "adloop-cache"
  region             = var.region
  tier               = "STANDARD_HA"
  memory_size_gb     = var.redis_memory_gb
  redis_version      = "REDIS_7_2"
  authorized_network = google_compute_network.adloop.id
  connect_mode       = "PRIVATE_SERVICE_ACCESS"
  auth_enabled       = true
  # The cache holds posterior draws keyed by hashed ad state: no personal data and no secrets. Transit
  # encryption would need the instance's own CA in ml-service's Redis client, which it does not load yet.
  transit_encryption_mode = "DISABLED"
  redis_configs = {
    "maxmemory-policy" = "allkeys-lru"
  }
  depends_on = [google_service_networking_connection.managed_services]
}
