; Inno Setup 6 script for workstation on Windows (UNTESTED here: no Windows build machine).
;
; Build on Windows, in a "x64 Native Tools" or plain shell with Python 3.11 and Git Bash:
;   bash packaging/build                 -> dist\workstation\ (workstation.exe, workstation-gui.exe)
;   iscc /DAppVersion=0.1.0 packaging\windows\workstation.iss
; Result: dist\workstation-0.1.0-setup.exe. Installs per machine (or per user if chosen), adds a
; Start-menu entry for the windowed app and leaves galleries and settings (in the user's
; AppData) alone on uninstall. Nothing is downloaded at install or at first start.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "Workstation"
#define Dist "..\..\dist\workstation"

[Setup]
AppId={{6F1C2B0E-4B7A-4E55-9C2D-3A1E8B7D5F21}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=workstation project
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=admin
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=workstation-{#AppVersion}-setup
SetupIconFile=..\..\resources\icons\workstation.ico
UninstallDisplayIcon={app}\workstation-gui.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
MinVersion=10.0

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole PyInstaller one-folder build: executables, _internal\ (Python, Qt, OpenCV, FAISS,
; the hash-checked models in _internal\models\ and workstation\resources\).
Source: "{#Dist}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "..\..\resources\icons\workstation.ico"; DestDir: "{app}"; Flags: ignoreversion

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\workstation-gui.exe"; IconFilename: "{app}\workstation.ico"
Name: "{autoprograms}\{#AppName} command line"; Filename: "{cmd}"; Parameters: "/k ""{app}\workstation.exe"" --help"; WorkingDir: "{userdocs}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\workstation-gui.exe"; IconFilename: "{app}\workstation.ico"; Tasks: desktopicon

[Run]
Filename: "{app}\workstation-gui.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
