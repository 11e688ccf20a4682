# A private network: Cloud SQL and Memorystore have private addresses only, and Cloud Run reaches them
# through a serverless VPC connector. Nothing here has a public IP.

resource "google_compute_network" "adloop" {
  name                    = "adloop"
  auto_create_subnetworks = false
  depends_on              = [google_project_service.required]
}

# No virtual machines live on this network: nothing may come in from outside it.
resource "google_compute_firewall" "deny_all_ingress" {
  name      = "adloop-deny-all-ingress"
  network   = google_compute_network.adloop.name
  direction = "INGRESS"
  priority  = 65534
  deny {
    protocol = "all"
  }
  source_ranges = ["0.0.0.0/0"]
  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_subnetwork" "adloop" {
  name                     = "adloop"
  network                  = google_compute_network.adloop.id
  region                   = var.region
  ip_cidr_range            = var.network_cidr
  private_ip_google_access = true
  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# The range Google's managed services (Cloud SQL, Memorystore) take their private addresses from.
resource "google_compute_global_address" "managed_services" {
  name          = "adloop-managed-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = google_compute_network.adloop.id
}

resource "google_service_networking_connection" "managed_services" {
  network                 = google_compute_network.adloop.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.managed_services.name]
}

resource "google_vpc_access_connector" "adloop" {
  name          = "adloop-connector"
  region        = var.region
  network       = google_compute_network.adloop.name
  ip_cidr_range = var.connector_cidr
  min_instances = 2
  max_instances = 3
}
