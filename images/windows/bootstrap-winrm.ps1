<powershell>
# Packer's build instance only: WinRM over HTTPS with a throwaway
# self-signed certificate, so packer can provision. Not part of the image's
# behaviour (EC2Launch is reset before the AMI is taken).
$ErrorActionPreference = 'Stop'
Set-ExecutionPolicy Unrestricted -Scope LocalMachine -Force
winrm quickconfig -quiet
$cert = New-SelfSignedCertificate -DnsName 'packer' -CertStoreLocation 'Cert:\LocalMachine\My'
Get-ChildItem WSMan:\Localhost\Listener | Where-Object Keys -eq 'Transport=HTTPS' | Remove-Item -Recurse
New-Item -Path WSMan:\LocalHost\Listener -Transport HTTPS -Address * -CertificateThumbPrint $cert.Thumbprint -Force
Set-Item -Path WSMan:\localhost\Service\Auth\Basic -Value $true
netsh advfirewall firewall add rule name="WinRM-HTTPS" dir=in localport=5986 protocol=TCP action=allow
Restart-Service -Name WinRM
</powershell>
