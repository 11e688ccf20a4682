output "gateway_api_url" {
  description = "gateway-api's HTTPS address (clients, operators)."
  value       = google_cloud_run_v2_service.client_facing["gateway-api"].uri
}

output "capi_relay_url" {
  description = "capi-relay's HTTPS address (websites and CRMs send conversions here)."
  value       = google_cloud_run_v2_service.client_facing["capi-relay"].uri
}

output "ml_service_url" {
  description = "ml-service's internal HTTPS address (reachable only from inside the project's network)."
  value       = google_cloud_run_v2_service.ml_service.uri
}

output "database_private_ip" {
  description = "Cloud SQL's private address."
  value       = google_sql_database_instance.adloop.private_ip_address
}

output "service_accounts" {
  description = "The service account of each service."
  value       = { for name, account in google_service_account.service : name => account.email }
}
