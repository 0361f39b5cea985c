module kovn.local/cni-plugin

go 1.26
