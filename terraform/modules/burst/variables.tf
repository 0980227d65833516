variable "name" {
  description = "Prefix for every resource this module creates."
  type        = string
  default     = "burst"
}

variable "vpc_id" {
  description = "VPC the master and the workers run in."
  type        = string
}

variable "master_id" {
  description = "The burst master's id (master_id in <state_dir>/run.json). IAM only lets the master launch, tag and terminate instances tagged with it. \"*\" accepts any burst master (any value of the tag) until you know the id."
  type        = string
  default     = "*"
}

variable "grpc_port" {
  description = "Port of the master's gRPC endpoint (master.grpc_listen); the only port workers may reach on the master."
  type        = number
  default     = 8481
}

variable "master_security_group_id" {
  description = "Existing security group of the master. When null the module creates one."
  type        = string
  default     = null
}

variable "worker_egress_cidrs" {
  description = "Where workers may connect to (builds fetch sources and packages)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "linux_ami_id" {
  description = "Linux worker AMI (images/linux). When null no Linux launch template is created."
  type        = string
  default     = null
}

variable "windows_ami_id" {
  description = "Windows worker AMI (images/windows). When null no Windows launch template is created."
  type        = string
  default     = null
}

variable "root_volume_size" {
  description = "Root volume size of workers, GiB."
  type        = number
  default     = 30
}

variable "root_volume_type" {
  description = "Root volume type of workers."
  type        = string
  default     = "gp3"
}

variable "linux_root_device_name" {
  description = "Root device name of the Linux AMI (/dev/sda1 on Ubuntu, /dev/xvda on Amazon Linux)."
  type        = string
  default     = "/dev/sda1"
}

variable "windows_root_device_name" {
  description = "Root device name of the Windows AMI."
  type        = string
  default     = "/dev/sda1"
}

variable "create_master_role" {
  description = "Create an IAM role and instance profile for a master that runs on EC2. The policy is created either way."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on every resource this module creates."
  type        = map(string)
  default     = {}
}
