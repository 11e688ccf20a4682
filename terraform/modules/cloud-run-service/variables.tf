variable "name" {
  description = "The Cloud Run service's name."
  type        = string
}

variable "region" {
  type = string
}

variable "image" {
  type = string
}

variable "service_account" {
  description = "The service account the service runs as (its only identity)."
  type        = string
}

variable "port" {
  type = number
}

variable "grpc" {
  description = "gRPC over HTTP/2 end to end (h2c port, gRPC probes); otherwise HTTP/1 with /healthz probes."
  type        = bool
}

variable "ingress" {
  type = string
}

variable "max_instances" {
  type = number
}

variable "concurrency" {
  description = "Requests one instance takes at once."
  type        = number
}

variable "memory" {
  type = string
}

variable "cpu_always_allocated" {
  description = "Keep CPU between requests (background workers: the executor, delivery)."
  type        = bool
}

variable "settings" {
  description = "Non-secret settings as ADLOOP_* environment variables."
  type        = map(string)
}

variable "secret_files" {
  description = "Settings read from files (ADLOOP_..._FILE or ADLOOP_CONFIG_FILE) => the Secret Manager secret_id mounted there."
  type        = map(string)
}

variable "vpc_connector" {
  type = string
}

variable "deletion_protection" {
  type = bool
}
